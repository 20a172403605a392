//! The locksmith conformance suite against `redis://` on a private redis-server (one per test
//! process, killed with it).

use std::sync::Arc;

use locksmith_core::Backend;
use locksmith_redis::RedisBackend;
use locksmith_testkit::servers::redis;

fn main() -> std::process::ExitCode {
    locksmith_testkit::conformance_main(|| async {
        // Listing the cases must not start a server.
        let listing = std::env::args().any(|a| a == "--list");
        let url = if listing {
            "redis://127.0.0.1:1".to_owned()
        } else {
            redis::shared().url()
        };
        locksmith_testkit::Target::new(
            "redis",
            url.clone(),
            locksmith_redis::capabilities(),
            move || {
                let url = url.clone();
                async move { Ok(Arc::new(RedisBackend::from_url(&url)?) as Arc<dyn Backend>) }
            },
        )
    })
}
