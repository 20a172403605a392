//! The locksmith conformance suite against a private standalone ZooKeeper that lives as long
//! as this test process (nextest runs each case in its own process). The session timeout is
//! 3 s so that the killed-holder case sees the lock freed soon after the holder dies.
//! `LOCKSMITH_ZK_MEMBERS=3` runs the same suite against a 3-member ensemble instead.

use std::sync::Arc;

use locksmith_core::Backend;
use locksmith_testkit::servers::zookeeper::{shared_zookeeper_ensemble_url, stop_shared_zookeeper};
use locksmith_zookeeper::ZooKeeperBackend;

fn main() -> std::process::ExitCode {
    let listing = std::env::args().any(|a| a == "--list");
    let code = locksmith_testkit::conformance_main(|| async move {
        // Listing must stay cheap: no server then (the URL is never used).
        let url = if listing {
            "zookeeper://127.0.0.1:1".to_owned()
        } else {
            let members = std::env::var("LOCKSMITH_ZK_MEMBERS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            format!(
                "{}?session_timeout=3",
                shared_zookeeper_ensemble_url(members)
            )
        };
        locksmith_testkit::Target::new(
            "zookeeper",
            url.clone(),
            locksmith_zookeeper::capabilities(),
            move || {
                let url = url.clone();
                async move { Ok(Arc::new(ZooKeeperBackend::from_url(&url)?) as Arc<dyn Backend>) }
            },
        )
    });
    stop_shared_zookeeper();
    code
}
