//! The one server-side wait per key: started by the head of the key's local line, kept in the
//! line's state so that a head that gives up hands it to the next waiter, and cancelled on the
//! server when nobody in this process wants it any more.

use std::sync::Arc;

use locksmith_core::{Error, Result};
use tokio::task::JoinHandle;

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

/// A blocking server call running in a task of its own.
pub(crate) struct Wait<D: Driver> {
    task: JoinHandle<Outcome<D>>,
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
        owner: String,
    ) -> Self {
        let (i, s) = (Arc::clone(inner), Arc::clone(&session));
        let task = tokio::spawn(async move {
            let r = i.driver.lock_wait(&s.conn, &name, &owner).await;
            (s, r)
        });
        Self {
            task,
            session,
            inner: Arc::clone(inner),
            done: false,
        }
    }

    /// Waits for the outcome.
    ///
    /// Cancel-safe: the task keeps running and its outcome stays here for the next waiter.
    pub(crate) async fn outcome(&mut self, key: &str) -> Result<Outcome<D>> {
        let out = (&mut self.task).await;
        self.done = true;
        out.map_err(|e| {
            Error::backend(
                self.inner.driver.display_url(),
                Some(key),
                format!("internal: the server-side wait task failed ({e})"),
                None,
            )
        })
    }
}

impl<D: Driver> Drop for Wait<D> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Nobody here wants the lock any more: stop the server-side wait. If the server
        // granted it meanwhile, closing the session releases it.
        self.task.abort();
        let (inner, session) = (Arc::clone(&self.inner), Arc::clone(&self.session));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let bound = inner.settings.connect_timeout;
                let _ = tokio::time::timeout(bound, inner.driver.cancel_wait(&session.conn)).await;
            });
        }
    }
}
