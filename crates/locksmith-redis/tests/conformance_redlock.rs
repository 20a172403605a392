//! The locksmith conformance suite against `redlock://` over five private redis-servers (one
//! set per test process, killed with it). The crate holds two backends, so it has two
//! conformance files: this one and `conformance.rs` (`redis://`).

use std::sync::Arc;

use locksmith_core::Backend;
use locksmith_redis::RedlockBackend;
use locksmith_testkit::servers::redis;

fn main() -> std::process::ExitCode {
    locksmith_testkit::conformance_main(|| async {
        // Listing the cases must not start servers.
        let listing = std::env::args().any(|a| a == "--list");
        let url = if listing {
            "redlock://127.0.0.1:1,127.0.0.1:2,127.0.0.1:3".to_owned()
        } else {
            let hosts: Vec<String> = redis::shared_five()
                .iter()
                .map(|s| format!("127.0.0.1:{}", s.port()))
                .collect();
            format!("redlock://{}", hosts.join(","))
        };
        locksmith_testkit::Target::new(
            "redlock",
            url.clone(),
            locksmith_redis::redlock_capabilities(),
            move || {
                let url = url.clone();
                async move { Ok(Arc::new(RedlockBackend::from_url(&url)?) as Arc<dyn Backend>) }
            },
        )
    })
}
