//! The one server-side wait per key: started by the head of the key's local line, kept in the
//! line's state so that a head that gives up hands it to the next waiter, and cancelled on the
//! server when nobody in this process wants it any more.
//!
//! The wait is a boxed future polled by whoever is at the head of the line, not a task of its
//! own: an uncontended acquire then costs no spawn and no wake-up of another thread, and a
//! head that gives up leaves the half-polled future in the line's state for the next one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use locksmith_core::Result;

use crate::driver::Driver;
use crate::engine::Inner;
use crate::session::Session;

/// State of one key's local line, kept across cancelled waiters.
pub(crate) struct KeyState<D: Driver> {
    /// The server-side wait in flight for this key, if any.
    pub(crate) wait: Option<Wait<D>>,
}

impl<D: Driver> Default for KeyState<D> {
    fn default() -> Self {
        Self { wait: None }
    }
}

/// What a finished wait yields: its session (holding the lock on success) and the token.
pub(crate) type Outcome<D> = (Arc<Session<D>>, Result<u64>);

/// A blocking server call, polled by the head of the key's line.
pub(crate) struct Wait<D: Driver> {
    call: Pin<Box<dyn Future<Output = Outcome<D>> + Send>>,
    session: Arc<Session<D>>,
    inner: Arc<Inner<D>>,
    done: bool,
}

impl<D: Driver> Wait<D> {
    /// Starts `lock_wait` on `session`.
    pub(crate) fn start(
        inner: &Arc<Inner<D>>,
        session: Arc<Session<D>>,
        name: D::Name,
        owner: std::sync::Arc<str>,
    ) -> Self {
        let (i, s) = (Arc::clone(inner), Arc::clone(&session));
        let call = Box::pin(async move {
            let r = i.driver.lock_wait(&s.conn, &name, &owner).await;
            (s, r)
        });
        Self {
            call,
            session,
            inner: Arc::clone(inner),
            done: false,
        }
    }

    /// Waits for the outcome.
    ///
    /// Cancel-safe: the call stays here, half polled, for the next waiter.
    pub(crate) async fn outcome(&mut self) -> Outcome<D> {
        let out = (&mut self.call).await;
        self.done = true;
        out
    }
}

impl<D: Driver> Drop for Wait<D> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Nobody here wants the lock any more: stop the server-side wait. If the server
        // granted it meanwhile, closing the session releases it.
        let (inner, session) = (Arc::clone(&self.inner), Arc::clone(&self.session));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let bound = inner.settings.connect_timeout;
                let _ = tokio::time::timeout(bound, inner.driver.cancel_wait(&session.conn)).await;
            });
        }
    }
}
