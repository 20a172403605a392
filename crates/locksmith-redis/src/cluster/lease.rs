//! A lock held on a Redis Cluster: the key's names, this grant's value prefix, and the master
//! that serves the key's slot (followed when the slot moves, fail closed when it restarted).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use locksmith_core::{Error, Lease, LossReason, Result};
use redis::cluster_async::ClusterConnection;

use crate::cluster::conn::{Cluster, Identity};
use crate::layout::Names;
use crate::scripts::{RELEASE, RENEW_MANY};

pub(crate) struct ClusterLease {
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) names: Names,
    pub(crate) owner_prefix: Arc<str>,
    /// The master serving the key's slot as last seen by this lease (`None` until a node that
    /// serves the slot answered).
    pub(crate) master: Arc<Mutex<Option<Identity>>>,
}

impl std::fmt::Debug for ClusterLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The value holds the secret: never print it.
        f.debug_struct("ClusterLease")
            .field("cluster", &self.cluster.url)
            .field("key", &self.names.lock())
            .finish()
    }
}

fn reset_reason(url: &str, granted: &Identity, now: &Identity) -> String {
    format!(
        "Redis Cluster master {} of {url} restarted (run_id {} is now {}); its keys may have \
         been lost, so another client may hold the lock",
        granted.node_id, granted.run_id, now.run_id
    )
}

impl ClusterLease {
    /// Compares the master serving the key's slot now with the one that granted (or last
    /// renewed): the same node in a new process is a restart (`Err` with the reason); another
    /// node means the slot moved (resharding, failover), and the lease follows it.
    /// `None` (the node that answered does not serve the slot) decides nothing.
    fn follow(&self, now: Option<&Identity>) -> std::result::Result<(), String> {
        let Some(now) = now else { return Ok(()) };
        let mut master = self.master.lock().expect("lease");
        match &*master {
            Some(m) if m.restarted_as(now) => Err(reset_reason(&self.cluster.url, m, now)),
            Some(m) if m.node_id == now.node_id => Ok(()),
            _ => {
                *master = Some(now.clone());
                Ok(())
            }
        }
    }

    /// Why this lease's master counts as restarted in `seen` (the run_ids last seen), if it does.
    fn restarted_in(&self, seen: &HashMap<Arc<str>, Arc<str>>) -> Option<String> {
        let master = self.master.lock().expect("lease");
        let master = master.as_ref()?;
        let now = Identity {
            node_id: Arc::clone(&master.node_id),
            run_id: Arc::clone(seen.get(&master.node_id)?),
        };
        master
            .restarted_as(&now)
            .then(|| reset_reason(&self.cluster.url, master, &now))
    }

    /// Fail closed: `session_lost` reports BackendReset (the run_id map already moved).
    fn reset_error(&self, reason: String) -> Error {
        Error::backend(&self.cluster.url, Some(self.names.lock()), reason, None)
    }

    /// Runs the release script (compare-and-delete + PUBLISH) without looking at the master.
    pub(crate) async fn release_script(&self) -> Result<bool> {
        let mut conn = self.cluster.conn().await?;
        self.release_on(&mut conn).await
    }

    async fn release_on(&self, conn: &mut ClusterConnection) -> Result<bool> {
        let keys_and_args = (self.names.lock(), &*self.owner_prefix, self.names.channel());
        let done: i64 = RELEASE
            .run(conn, 1, keys_and_args)
            .await
            .map_err(|e| self.cluster.error(Some(self.names.lock()), e))?;
        Ok(done == 1)
    }
}

#[async_trait]
impl Lease for ClusterLease {
    async fn renew(&self, ttl: Duration) -> Result<bool> {
        let mut conn = self.cluster.conn().await?;
        let mut ask = conn.clone();
        let mut ask_again = conn.clone();
        let ttl_ms = crate::layout::whole_ms(ttl);
        // Both go to the slot's master at once: one round trip. A restarted master may refuse
        // scripts for a while (CLUSTERDOWN, retried by the client), so its identity decides
        // without waiting for the script.
        let ask = self.cluster.identity(&mut ask, self.names.lock());
        let keys_and_args = (self.names.lock(), &*self.owner_prefix, ttl_ms);
        let script = async {
            let one: Vec<i64> = RENEW_MANY.run(&mut conn, 1, keys_and_args).await?;
            Ok::<i64, redis::RedisError>(one.first().copied().unwrap_or(0))
        };
        tokio::pin!(ask, script);
        let mut done = None;
        let master = loop {
            tokio::select! {
                m = &mut ask => break m,
                d = &mut script, if done.is_none() => done = Some(d),
            }
        };
        let master = master?;
        self.follow(master.as_ref())
            .map_err(|reason| self.reset_error(reason))?;
        let done = match done {
            Some(d) => d,
            None => script.await,
        };
        let done = done.map_err(|e| self.cluster.error(Some(self.names.lock()), e))?;
        if done != 1 && master.is_none() {
            // Refused while a node that does not serve the slot answered for its master (the
            // client had no connection to it yet): ask again now that the script reached it, so
            // that a master that restarted is reported as such.
            if let Ok(now) = self
                .cluster
                .identity(&mut ask_again, self.names.lock())
                .await
            {
                self.follow(now.as_ref())
                    .map_err(|reason| self.reset_error(reason))?;
            }
        }
        Ok(done == 1)
    }

    async fn release(&self) -> Result<bool> {
        // A master seen restarted since (by any request of this backend) reports `false`, as
        // on one primary (fail closed); otherwise the compare-and-delete decides.
        let restarted = {
            let seen = self.cluster.run_ids();
            let seen = seen.borrow();
            self.restarted_in(&seen).is_some()
        };
        if restarted {
            return Ok(false);
        }
        self.release_script().await
    }

    async fn session_lost(&self) -> LossReason {
        let mut rx = self.cluster.run_ids();
        let reason = rx
            .wait_for(|seen| self.restarted_in(seen).is_some())
            .await
            .map(|seen| self.restarted_in(&seen));
        match reason {
            Ok(Some(reason)) => LossReason::BackendReset(reason),
            _ => std::future::pending().await,
        }
    }
}
