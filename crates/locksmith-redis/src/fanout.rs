//! Sending one request to every Redlock node at once and stopping as soon as the answers so
//! far decide the outcome (a majority said yes, or a majority can no longer say yes).

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use futures_util::future::join_all;
use locksmith_core::{Error, Result};

/// Each node's answer so far: `None` while unanswered.
pub(crate) type Answers<T> = Vec<Option<Result<T>>>;

/// Runs `request(i)` for every node `i` concurrently, each bounded by `per_node` (one timer
/// for all: they start together), until `decided(&answers)` is true or every node answered.
/// Requests still in flight then are finished by a background task (within the same bound),
/// not dropped: the redis client does not send a queued request whose caller went away, and
/// a release (or an acquire, whose counter should stay in step) must reach every node.
///
/// The requests are polled here one after the other on each wake-up (a handful of nodes):
/// each is boxed once where it is made, where a `FuturesUnordered` moved every request
/// future (over half a kilobyte) three times and kept a task record and a wake-up queue of
/// its own for each.
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
    let mut pending: Vec<Option<Pin<Box<Fut>>>> =
        (0..nodes).map(|i| Some(Box::pin(request(i)))).collect();
    let mut answers: Answers<T> = (0..nodes).map(|_| None).collect();
    let timer = tokio::time::sleep_until(deadline);
    tokio::pin!(timer);
    let end = std::future::poll_fn(|cx| {
        for (i, slot) in pending.iter_mut().enumerate() {
            let Some(request) = slot else { continue };
            if let Poll::Ready(out) = request.as_mut().poll(cx) {
                *slot = None;
                answers[i] = Some(out);
                if decided(&answers) {
                    return Poll::Ready(End::Decided);
                }
            }
        }
        if pending.iter().all(Option::is_none) {
            return Poll::Ready(End::AllAnswered);
        }
        timer.as_mut().poll(cx).map(|()| End::TimedOut)
    })
    .await;
    match end {
        End::Decided => {
            let rest: Vec<Pin<Box<Fut>>> = pending.into_iter().flatten().collect();
            if !rest.is_empty()
                && let Ok(rt) = tokio::runtime::Handle::try_current()
            {
                rt.spawn(tokio::time::timeout_at(deadline, join_all(rest)));
            }
        }
        End::AllAnswered => {}
        End::TimedOut => {
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
        }
    }
    answers
}

/// How a fan-out's wait ended.
enum End {
    Decided,
    AllAnswered,
    TimedOut,
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
