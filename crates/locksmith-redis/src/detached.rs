//! Cancel-safe attempts: the request runs in a task of its own, and a grant that its caller is
//! no longer there to take (the acquire future was dropped before, during or right after the
//! answer) is released at once instead of staying held until its TTL.

use std::future::Future;

use locksmith_core::{Error, Grant, Result};
use tokio::sync::oneshot;

/// A grant on its way to the caller; released if dropped unclaimed.
struct Unclaimed(Option<Grant>);

impl Drop for Unclaimed {
    fn drop(&mut self) {
        if let Some(grant) = self.0.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move {
                let _ = grant.lease.release().await;
            });
        }
    }
}

/// Runs `attempt` detached; `split` tells a grant from other outcomes.
pub(crate) async fn run<A, Fut>(
    url: &str,
    attempt: Fut,
    split: fn(A) -> std::result::Result<Grant, A>,
    join: fn(Grant) -> A,
) -> Result<A>
where
    A: Send + 'static,
    Fut: Future<Output = Result<A>> + Send + 'static,
{
    let (tx, rx) = oneshot::channel::<Result<std::result::Result<Unclaimed, A>>>();
    tokio::spawn(async move {
        let out = attempt.await.map(|a| split(a).map(|g| Unclaimed(Some(g))));
        // If the caller is gone, the returned value (and its Unclaimed) is dropped: released.
        let _ = tx.send(out);
    });
    match rx.await {
        Ok(Ok(Ok(mut unclaimed))) => Ok(join(unclaimed.0.take().expect("claimed once"))),
        Ok(Ok(Err(other))) => Ok(other),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Error::backend(
            url,
            None,
            "the acquire task ended without an answer (runtime shutting down?)",
            None,
        )),
    }
}
