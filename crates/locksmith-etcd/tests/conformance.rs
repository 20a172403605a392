//! The locksmith conformance suite against a private single-node etcd that lives as long as
//! this test process (nextest runs each case in its own process). The lease TTL is 3 s so
//! that the killed-holder case sees the lock freed soon after the holder dies.
//! `LOCKSMITH_ETCD_MEMBERS=3` runs the same suite against a 3-member cluster instead.

use std::sync::Arc;

use locksmith_core::Backend;
use locksmith_etcd::EtcdBackend;
use locksmith_testkit::servers::etcd::{shared_etcd_cluster_url, stop_shared_etcd};

fn main() -> std::process::ExitCode {
    let listing = std::env::args().any(|a| a == "--list");
    let code = locksmith_testkit::conformance_main(|| async move {
        // Listing must stay cheap: no server then (the URL is never used).
        let url = if listing {
            "etcd://127.0.0.1:1".to_owned()
        } else {
            let members = std::env::var("LOCKSMITH_ETCD_MEMBERS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            format!("{}?lease_ttl=3", shared_etcd_cluster_url(members))
        };
        locksmith_testkit::Target::new(
            "etcd",
            url.clone(),
            locksmith_etcd::capabilities(),
            move || {
                let url = url.clone();
                async move { Ok(Arc::new(EtcdBackend::from_url(&url)?) as Arc<dyn Backend>) }
            },
        )
    });
    stop_shared_etcd();
    code
}
