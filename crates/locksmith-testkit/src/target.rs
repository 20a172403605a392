//! What a backend hands the conformance suite: how to open independent clients on one lock
//! space, and the URL the `locksmith` CLI can use to reach the same space.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use locksmith_core::{Backend, Capabilities, Result};

type Connect =
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<Arc<dyn Backend>>> + Send>> + Send + Sync;

/// One backend under test.
#[derive(Clone)]
pub struct Target {
    /// Short name used in messages, e.g. `"file"`.
    pub name: String,
    /// A URL that `locksmith --url` opens onto the same lock space as [`Target::connect`].
    pub url: String,
    /// What the backend can do; cases it cannot support are reported as skipped, by name.
    pub capabilities: Capabilities,
    connect: Arc<Connect>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("url", &self.url)
            .finish()
    }
}

impl Target {
    /// A target. `connect` must return a new, independent client each call (its own
    /// connection or session), all on the same lock space.
    pub fn new<F, Fut>(
        name: impl Into<String>,
        url: impl Into<String>,
        capabilities: Capabilities,
        connect: F,
    ) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Arc<dyn Backend>>> + Send + 'static,
    {
        Self {
            name: name.into(),
            url: url.into(),
            capabilities,
            connect: Arc::new(move || Box::pin(connect())),
        }
    }

    /// Opens a new independent client.
    ///
    /// # Errors
    /// The backend's connect error.
    ///
    /// # Cancel safety
    /// As the backend's connect.
    pub async fn connect(&self) -> Result<Arc<dyn Backend>> {
        (self.connect)().await
    }
}
