//! The locksmith conformance suite against `redis+cluster://` on a private 3-master Redis
//! Cluster (one per test process, killed with it).

use std::sync::Arc;

use locksmith_core::Backend;
use locksmith_redis::RedisClusterBackend;
use locksmith_testkit::servers::redis_cluster;

fn main() -> std::process::ExitCode {
    locksmith_testkit::conformance_main(|| async {
        // Listing the cases must not start servers.
        let listing = std::env::args().any(|a| a == "--list");
        let url = if listing {
            "redis+cluster://127.0.0.1:1,127.0.0.1:2,127.0.0.1:3".to_owned()
        } else {
            redis_cluster::shared().url("redis+cluster")
        };
        locksmith_testkit::Target::new(
            "redis+cluster",
            url.clone(),
            locksmith_redis::cluster_capabilities(),
            move || {
                let url = url.clone();
                async move { Ok(Arc::new(RedisClusterBackend::from_url(&url)?) as Arc<dyn Backend>) }
            },
        )
    })
}
