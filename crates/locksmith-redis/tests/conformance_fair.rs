//! The locksmith conformance suite against `redis://…?fair=true` (fair mode: waiters served in
//! arrival order) on a private redis-server (one per test process, killed with it).

use std::sync::Arc;

use locksmith_core::Backend;
use locksmith_redis::RedisBackend;
use locksmith_testkit::servers::redis;

fn main() -> std::process::ExitCode {
    locksmith_testkit::conformance_main(|| async {
        // Listing the cases must not start a server.
        let listing = std::env::args().any(|a| a == "--list");
        let url = if listing {
            "redis://127.0.0.1:1?fair=true".to_owned()
        } else {
            format!("{}?fair=true", redis::shared().url())
        };
        locksmith_testkit::Target::new(
            "redis-fair",
            url.clone(),
            locksmith_redis::fair_capabilities(),
            move || {
                let url = url.clone();
                async move { Ok(Arc::new(RedisBackend::from_url(&url)?) as Arc<dyn Backend>) }
            },
        )
    })
}
