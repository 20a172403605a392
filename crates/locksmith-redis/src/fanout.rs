//! Sending one request to every Redlock node at once and stopping as soon as the answers so
//! far decide the outcome (a majority said yes, or a majority can no longer say yes).

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use locksmith_core::{Error, Result};

/// Each node's answer so far: `None` while unanswered.
pub(crate) type Answers<T> = Vec<Option<Result<T>>>;

/// Runs `request(i)` for every node `i` concurrently, each bounded by `per_node` (one timer
/// for all: they start together), until `decided(&answers)` is true or every node answered.
/// Requests still in flight then are finished by a background task (within the same bound),
/// not dropped: the redis client does not send a queued request whose caller went away, and
/// a release (or an acquire, whose counter should stay in step) must reach every node.
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
    let deadline = tokio::time::Instant::now() + per_node;
    let mut pending: FuturesUnordered<_> = (0..nodes)
        .map(|i| {
            let fut = request(i);
            async move { (i, fut.await) }
        })
        .collect();
    let mut answers: Answers<T> = (0..nodes).map(|_| None).collect();
    let timer = tokio::time::sleep_until(deadline);
    tokio::pin!(timer);
    loop {
        tokio::select! {
            biased;
            next = pending.next() => {
                let Some((i, out)) = next else { break };
                answers[i] = Some(out);
                if decided(&answers) {
                    if !pending.is_empty()
                        && let Ok(rt) = tokio::runtime::Handle::try_current()
                    {
                        rt.spawn(tokio::time::timeout_at(deadline, async move {
                            while pending.next().await.is_some() {}
                        }));
                    }
                    break;
                }
            }
            () = &mut timer => {
                for (i, a) in answers.iter_mut().enumerate() {
                    if a.is_none() {
                        *a = Some(Err(Error::backend(
                            url_of(i),
                            None,
                            format!("no answer within the per-node timeout ({per_node:?})"),
                            None,
                        )));
                    }
                }
                break;
            }
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
