//! The locksmith conformance suite over TLS (`ssl-mode=VERIFY_IDENTITY` with the test CA)
//! against a private MariaDB server with TLS on, started once in this test process (not when
//! tests are only listed) and stopped when it exits.

use std::sync::Arc;

use locksmith_core::Backend;
use locksmith_testkit::servers::mariadb::mariadb_tls;

fn main() -> std::process::ExitCode {
    let listing = std::env::args().any(|a| a == "--list");
    locksmith_testkit::conformance_main(|| async move {
        let url = if listing {
            "mysql://127.0.0.1:1/not-started".to_owned()
        } else {
            let db = mariadb_tls();
            let ca = db
                .tls
                .as_ref()
                .expect("a TLS server")
                .ca
                .display()
                .to_string();
            format!("{}&ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}", db.url)
        };
        locksmith_testkit::Target::new(
            "mysql-tls",
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
