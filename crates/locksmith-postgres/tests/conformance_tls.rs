//! The locksmith conformance suite over TLS (`sslmode=verify-full` with the test CA) against
//! a private PostgreSQL 15 cluster with `ssl=on`, started once in this test process (not
//! when tests are only listed) and stopped when it exits.

use std::sync::Arc;

use locksmith_core::Backend;
use locksmith_testkit::servers::postgres::postgres_tls;

fn main() -> std::process::ExitCode {
    let listing = std::env::args().any(|a| a == "--list");
    locksmith_testkit::conformance_main(|| async move {
        let url = if listing {
            "postgres://127.0.0.1:1/not-started".to_owned()
        } else {
            let pg = postgres_tls();
            let ca = pg
                .tls
                .as_ref()
                .expect("a TLS cluster")
                .ca
                .display()
                .to_string();
            format!("{}?sslmode=verify-full&sslrootcert={ca}", pg.url)
        };
        locksmith_testkit::Target::new(
            "postgres-tls",
            url.clone(),
            locksmith_postgres::capabilities(),
            move || {
                let url = url.clone();
                async move {
                    let b = locksmith_postgres::PgBackend::connect(&url).await?;
                    Ok(Arc::new(b) as Arc<dyn Backend>)
                }
            },
        )
    })
}
