//! One Redis Cluster: a `ClusterConnection` (it follows `MOVED`/`ASK` redirections and keeps
//! its own connection to each node), and the identity of the master serving a key's slot
//! (`CLUSTER MYID` + the `run_id` from `INFO server`), so that a master that restarted
//! (same node id, new `run_id`) is told apart from a slot that moved to another master.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use locksmith_core::{Error, Result};
use redis::RedisError;
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, SingleNodeRoutingInfo, SlotAddr};
use tokio::sync::watch;

use crate::error::{connect_timeout, request_error};
use crate::url::{Target, UrlOptions};

/// The master serving a slot: its cluster node id (kept across restarts in `nodes.conf`) and
/// the `run_id` of its process (new on every start).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) node_id: Arc<str>,
    pub(crate) run_id: Arc<str>,
}

impl Identity {
    /// True when `now` is the same node as `self` in a new process: it restarted.
    pub(crate) fn restarted_as(&self, now: &Identity) -> bool {
        self.node_id == now.node_id && self.run_id != now.run_id
    }
}

/// A Redis Cluster, shared by every request and lease of a backend.
pub(crate) struct Cluster {
    client: ClusterClient,
    /// The seed list as given, password masked.
    pub(crate) url: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) command_timeout: Duration,
    conn: tokio::sync::OnceCell<ClusterConnection>,
    /// The `run_id` last seen per cluster node id.
    run_ids: watch::Sender<HashMap<Arc<str>, Arc<str>>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("url", &self.url).finish()
    }
}

impl Cluster {
    pub(crate) fn new(seeds: &[Target], masked: String, opts: &UrlOptions) -> Result<Self> {
        let tls = seeds.iter().any(|t| t.tls);
        #[cfg(feature = "tls")]
        if tls {
            // rustls needs one process-wide crypto provider; a second install is harmless.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        #[cfg(not(feature = "tls"))]
        if tls {
            return Err(Error::InvalidUrl {
                url: masked,
                reason: "rediss+cluster:// needs the `tls` cargo feature of locksmith-redis".into(),
            });
        }
        let refused = |e: RedisError| Error::InvalidUrl {
            url: masked.clone(),
            reason: format!("the redis client refuses it: {e}"),
        };
        let mut builder = ClusterClientBuilder::new(seeds.iter().map(|t| t.url.as_str()))
            .connection_timeout(opts.connect_timeout)
            .response_timeout(opts.command_timeout);
        #[cfg(feature = "tls")]
        if let Some(path) = &opts.tls_ca {
            let pem = std::fs::read(path).map_err(|e| Error::InvalidUrl {
                url: masked.clone(),
                reason: format!("cannot read tls_ca file {}: {e}", path.display()),
            })?;
            builder = builder.certs(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem),
            });
        }
        let client = builder.build().map_err(refused)?;
        Ok(Self {
            client,
            url: masked,
            connect_timeout: opts.connect_timeout,
            command_timeout: opts.command_timeout,
            conn: tokio::sync::OnceCell::new(),
            run_ids: watch::channel(HashMap::new()).0,
        })
    }

    /// The cluster connection, made (slot map read from a seed) at the first request.
    ///
    /// # Errors
    /// No seed answered within the connect timeout, or one refused the credentials.
    ///
    /// # Cancel safety
    /// Cancel-safe: a dropped connect leaves no half-made state.
    pub(crate) async fn conn(&self) -> Result<ClusterConnection> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                tokio::time::timeout(self.connect_timeout, self.client.get_async_connection())
                    .await
                    .map_err(|_| connect_timeout(&self.url, self.connect_timeout))?
                    .map_err(|e| self.error(None, e))
            })
            .await?;
        Ok(conn.clone())
    }

    /// The identity of the master serving `key`'s slot, recorded for [`Cluster::run_ids`];
    /// `None` when the node that answered does not serve the slot (the client sends a request
    /// for a node it cannot reach to another node; or its slot map is stale).
    ///
    /// # Errors
    /// When no node answers, or the answers are not Redis Cluster's.
    ///
    /// # Cancel safety
    /// Cancel-safe; it only reads.
    pub(crate) async fn identity(
        &self,
        conn: &mut ClusterConnection,
        key: &str,
    ) -> Result<Option<Identity>> {
        let mut pipe = redis::pipe();
        pipe.cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .cmd("CLUSTER")
            .arg("NODES")
            .cmd("INFO")
            .arg("server");
        let route = SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master));
        let values = conn
            .route_pipeline(pipe, 0, 3, route)
            .await
            .map_err(|e| self.error(Some(key), e))?;
        let slot = values
            .first()
            .and_then(|v| redis::from_redis_value_ref::<u16>(v).ok());
        let text = |i: usize| -> Option<String> {
            values
                .get(i)
                .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
        };
        let run_id = text(2).and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("run_id:"))
                .map(|s| s.trim().to_owned())
        });
        let (Some(slot), Some(nodes), Some(run_id)) = (slot, text(1), run_id) else {
            return Err(Error::backend(
                &self.url,
                Some(key),
                "a node answered CLUSTER KEYSLOT / CLUSTER NODES / INFO server without a slot, \
                 its own node line or a run_id: is it Redis with cluster mode enabled?",
                None,
            ));
        };
        let Some(node_id) = serving_node(&nodes, slot) else {
            return Ok(None);
        };
        let now = Identity {
            node_id: node_id.into(),
            run_id: run_id.into(),
        };
        self.run_ids.send_if_modified(|seen| {
            match seen.get(&now.node_id) {
                Some(old) if *old == now.run_id => return false,
                Some(old) => tracing::warn!(
                    cluster = %self.url, node = %now.node_id, old = %old, new = %now.run_id,
                    "Redis Cluster master restarted (run_id changed): leases it granted are \
                     treated as lost"
                ),
                None => {}
            }
            seen.insert(Arc::clone(&now.node_id), Arc::clone(&now.run_id));
            true
        });
        Ok(Some(now))
    }

    /// Watches the `run_id` last seen per cluster node id.
    pub(crate) fn run_ids(&self) -> watch::Receiver<HashMap<Arc<str>, Arc<str>>> {
        self.run_ids.subscribe()
    }

    pub(crate) fn error(&self, key: Option<&str>, err: RedisError) -> Error {
        request_error(&self.url, key, err, self.command_timeout)
    }
}

/// From a node's `CLUSTER NODES` answer: its own node id, if it is a master that serves `slot`.
fn serving_node(nodes: &str, slot: u16) -> Option<String> {
    let me = nodes.lines().find(|l| {
        l.split_whitespace()
            .nth(2)
            .is_some_and(|flags| flags.split(',').any(|f| f == "myself"))
    })?;
    let fields: Vec<&str> = me.split_whitespace().collect();
    let is_master = fields.get(2)?.split(',').any(|f| f == "master");
    let serves = fields.iter().skip(8).any(|range| {
        // `[slot->-id]` / `[slot-<-id]` mark slots being migrated: not ranges.
        let mut ends = range.splitn(2, '-');
        let lo = ends.next().and_then(|s| s.parse::<u16>().ok());
        let hi = match ends.next() {
            Some(s) => s.parse::<u16>().ok(),
            None => lo,
        };
        matches!((lo, hi), (Some(lo), Some(hi)) if (lo..=hi).contains(&slot))
    });
    (is_master && serves).then(|| fields[0].to_owned())
}

#[cfg(test)]
mod tests {
    use super::serving_node;

    #[test]
    fn the_node_that_answered_is_found_only_if_it_serves_the_slot() {
        let nodes = "\
a1 127.0.0.1:7001@17001 master - 0 0 1 connected 0-5460
b2 127.0.0.1:7002@17002 myself,master - 0 0 2 connected 5461-10922 12000 [12001->-c3]
c3 127.0.0.1:7003@17003 master - 0 0 3 connected 10923-11999 12001-16383
";
        assert_eq!(serving_node(nodes, 5461).as_deref(), Some("b2"));
        assert_eq!(serving_node(nodes, 10922).as_deref(), Some("b2"));
        assert_eq!(serving_node(nodes, 12000).as_deref(), Some("b2"));
        assert_eq!(serving_node(nodes, 12001), None);
        assert_eq!(serving_node(nodes, 0), None);
        let replica = "b2 127.0.0.1:7002@17002 myself,slave a1 0 0 2 connected\n";
        assert_eq!(serving_node(replica, 1), None);
    }
}
