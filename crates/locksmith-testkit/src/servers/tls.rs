//! Throwaway TLS material for test servers: a CA and a server certificate for `127.0.0.1`
//! (and `localhost`) signed by it, made with `openssl` (Debian package `openssl`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::require_binary;

/// PEM files written by [`make_server_certs`].
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The CA's certificate: what a client trusts.
    pub ca: PathBuf,
    /// The server's certificate, signed by the CA, for `IP:127.0.0.1` and `DNS:localhost`.
    pub cert: PathBuf,
    /// The server's private key (unencrypted).
    pub key: PathBuf,
}

/// Writes a fresh CA (`ca.pem`, `ca.key`) and a server certificate for 127.0.0.1
/// (`server.pem`, `server.key`) into `dir`, valid for two days.
///
/// # Panics
/// When `openssl` is missing or fails (its stderr is in the message).
pub fn make_server_certs(dir: &Path) -> CertFiles {
    let openssl = require_binary("openssl", "openssl");
    let run = |args: &[&str]| {
        let out = Command::new(&openssl)
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("write ext.cnf");
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=locksmith test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    CertFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}
