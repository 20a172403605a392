//! One Redis server: a shared multiplexed connection, made again when it breaks, and the
//! server's `run_id`, watched so that a restart (which loses every key unless persisted) is
//! noticed the moment the connection is made again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use locksmith_core::{Error, Result};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError};
use tokio::sync::watch;

use crate::error::{connect_timeout, is_connection_error, request_error};
use crate::url::{Target, UrlOptions};

/// A live connection and the `run_id` of the server process behind it.
#[derive(Clone)]
pub(crate) struct Live {
    pub(crate) conn: MultiplexedConnection,
    pub(crate) run_id: Arc<str>,
    generation: u64,
}

/// One server, shared by every request and lease of a backend.
pub(crate) struct Node {
    pub(crate) client: Client,
    /// The server's URL, password masked.
    pub(crate) url: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) command_timeout: Duration,
    current: Mutex<Option<Live>>,
    connecting: tokio::sync::Mutex<u64>,
    /// The `run_id` of the server as last seen; `None` before the first connection.
    run_id: watch::Sender<Option<Arc<str>>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("url", &self.url).finish()
    }
}

impl Node {
    pub(crate) fn new(target: &Target, masked: String, opts: &UrlOptions) -> Result<Self> {
        #[cfg(feature = "tls")]
        if target.tls {
            // rustls needs one process-wide crypto provider; a second install is harmless.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        #[cfg(not(feature = "tls"))]
        if target.tls {
            return Err(Error::InvalidUrl {
                url: masked,
                reason: "rediss:// needs the `tls` cargo feature of locksmith-redis".into(),
            });
        }
        let refused = |e: redis::RedisError| Error::InvalidUrl {
            url: masked.clone(),
            reason: format!("the redis client refuses it: {e}"),
        };
        let client = match &opts.tls_ca {
            #[cfg(feature = "tls")]
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| Error::InvalidUrl {
                    url: masked.clone(),
                    reason: format!("cannot read tls_ca file {}: {e}", path.display()),
                })?;
                let certs = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                };
                Client::build_with_tls(target.url.as_str(), certs).map_err(refused)?
            }
            _ => Client::open(target.url.as_str()).map_err(refused)?,
        };
        Ok(Self {
            client,
            url: masked,
            connect_timeout: opts.connect_timeout,
            command_timeout: opts.command_timeout,
            current: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(0),
            run_id: watch::channel(None).0,
        })
    }

    /// Watches the server's `run_id`.
    pub(crate) fn run_id_watch(&self) -> watch::Receiver<Option<Arc<str>>> {
        self.run_id.subscribe()
    }

    /// The live connection, connecting (and reading `run_id`) first when there is none.
    ///
    /// # Cancel safety
    /// Cancel-safe: a dropped connect leaves no half-made state.
    pub(crate) async fn live(&self) -> Result<Live> {
        if let Some(live) = self.current.lock().expect("node").clone() {
            return Ok(live);
        }
        // Boxed: connecting is a large state machine, which would otherwise make every future
        // that asks for the connection (each request's) as large as itself.
        Box::pin(self.reconnect()).await
    }

    /// The slow path of [`Node::live`]: one caller connects, the others wait for it.
    async fn reconnect(&self) -> Result<Live> {
        let mut generation = self.connecting.lock().await;
        if let Some(live) = self.current.lock().expect("node").clone() {
            return Ok(live);
        }
        let live = tokio::time::timeout(self.connect_timeout, self.connect())
            .await
            .map_err(|_| connect_timeout(&self.url, self.connect_timeout))??;
        *generation += 1;
        let live = Live {
            generation: *generation,
            ..live
        };
        *self.current.lock().expect("node") = Some(live.clone());
        self.run_id.send_if_modified(|seen| {
            if seen.as_deref() != Some(&*live.run_id) {
                if let Some(old) = seen {
                    tracing::warn!(
                        server = %self.url, old = %old, new = %live.run_id,
                        "Redis restarted (run_id changed): leases held there are treated as lost"
                    );
                }
                *seen = Some(Arc::clone(&live.run_id));
                true
            } else {
                false
            }
        });
        Ok(live)
    }

    async fn connect(&self) -> Result<Live> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.command_timeout));
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| self.error(None, e))?;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error(None, e))?;
        let run_id = info
            .lines()
            .find_map(|l| l.strip_prefix("run_id:"))
            .map(|s| s.trim().to_owned())
            .ok_or_else(|| {
                Error::backend(
                    &self.url,
                    None,
                    "the server's INFO has no run_id: is it Redis (or a compatible server)?",
                    None,
                )
            })?;
        Ok(Live {
            conn,
            run_id: run_id.into(),
            generation: 0,
        })
    }

    /// Maps an error of a request made on `live`, dropping that connection when it broke.
    pub(crate) fn failed(&self, live: &Live, key: Option<&str>, err: RedisError) -> Error {
        if is_connection_error(&err) {
            let mut cur = self.current.lock().expect("node");
            if cur
                .as_ref()
                .is_some_and(|c| c.generation == live.generation)
            {
                *cur = None;
            }
        }
        self.error(key, err)
    }

    pub(crate) fn error(&self, key: Option<&str>, err: RedisError) -> Error {
        request_error(&self.url, key, err, self.command_timeout)
    }
}
