//! Sending one request to every Redlock node at once and stopping as soon as the answers so
//! far decide the outcome (a majority said yes, or a majority can no longer say yes).

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use locksmith_core::{Error, Result};

/// Each node's answer so far: `None` while unanswered.
pub(crate) type Answers<T> = Vec<Option<Result<T>>>;

/// Runs `request(i)` for every node `i` concurrently, each bounded by `per_node`, until
/// `decided(&answers)` is true or every node answered. Requests still in flight then are
/// finished by a background task, not dropped: the redis client does not send a queued
/// request whose caller went away, and a release (or an acquire, whose counter should stay
/// in step) must reach every node.
pub(crate) async fn fan_out<T, F, Fut>(
    nodes: usize,
    per_node: Duration,
    url_of: impl Fn(usize) -> String,
    request: F,
    mut decided: impl FnMut(&Answers<T>) -> bool,
) -> Answers<T>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let mut pending: FuturesUnordered<_> = (0..nodes)
        .map(|i| {
            let fut = request(i);
            async move { (i, tokio::time::timeout(per_node, fut).await) }
        })
        .collect();
    let mut answers: Answers<T> = (0..nodes).map(|_| None).collect();
    while let Some((i, out)) = pending.next().await {
        answers[i] = Some(out.unwrap_or_else(|_| {
            Err(Error::backend(
                url_of(i),
                None,
                format!("no answer within the per-node timeout ({per_node:?})"),
                None,
            ))
        }));
        if decided(&answers) {
            if !pending.is_empty()
                && let Ok(rt) = tokio::runtime::Handle::try_current()
            {
                rt.spawn(async move { while pending.next().await.is_some() {} });
            }
            break;
        }
    }
    answers
}

/// How many answers are `Ok` and satisfy `pred`.
pub(crate) fn count<T>(answers: &Answers<T>, pred: impl Fn(&T) -> bool) -> usize {
    answers
        .iter()
        .filter(|a| matches!(a, Some(Ok(v)) if pred(v)))
        .count()
}

/// How many nodes answered at all (not an error, not a timeout).
pub(crate) fn answered<T>(answers: &Answers<T>) -> usize {
    answers.iter().filter(|a| matches!(a, Some(Ok(_)))).count()
}

/// The errors, one line per node, for a message.
pub(crate) fn errors<T>(answers: &Answers<T>) -> String {
    answers
        .iter()
        .filter_map(|a| match a {
            Some(Err(e)) => Some(e.to_string()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("; ")
}
