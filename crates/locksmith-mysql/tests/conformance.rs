//! The locksmith conformance suite against a private MariaDB server, started once in this
//! test process (not when tests are only listed) and stopped when it exits.

use std::sync::Arc;

use locksmith_core::Backend;
use locksmith_testkit::servers::mariadb::mariadb;

fn main() -> std::process::ExitCode {
    let listing = std::env::args().any(|a| a == "--list");
    locksmith_testkit::conformance_main(|| async move {
        let url = if listing {
            "mysql://127.0.0.1:1/not-started".to_owned()
        } else {
            mariadb().url.clone()
        };
        locksmith_testkit::Target::new(
            "mysql",
            url.clone(),
            locksmith_mysql::capabilities(),
            move || {
                let url = url.clone();
                async move {
                    let b = locksmith_mysql::MySqlBackend::connect(&url).await?;
                    Ok(Arc::new(b) as Arc<dyn Backend>)
                }
            },
        )
    })
}
