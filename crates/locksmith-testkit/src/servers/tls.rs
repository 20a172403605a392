//! Throwaway TLS material for test servers: a CA and a server certificate for `127.0.0.1`
//! (and `localhost`) signed by it, and client certificates signed by the same CA, made with
//! `openssl` (Debian package `openssl`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::require_binary;

/// PEM files written by [`make_server_certs`].
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The CA's certificate: what a client trusts.
    pub ca: PathBuf,
    /// The CA's private key (unencrypted), to sign more certificates with.
    pub ca_key: PathBuf,
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
    let run = |args: &[&str]| openssl(dir, args);
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
        ca_key: dir.join("ca.key"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}

/// Writes a client certificate for `user` (its common name) signed by the CA of `certs`
/// into `dir` (`client-USER.pem`, `client-USER.key`), valid for two days, and returns the
/// paths of the certificate and of its key.
///
/// # Panics
/// When `openssl` is missing or fails (its stderr is in the message).
pub fn make_client_cert(dir: &Path, certs: &CertFiles, user: &str) -> (PathBuf, PathBuf) {
    let (cert, key, csr) = (
        dir.join(format!("client-{user}.pem")),
        dir.join(format!("client-{user}.key")),
        dir.join(format!("client-{user}.csr")),
    );
    let path = |p: &Path| p.display().to_string();
    // An extension makes it an X.509 v3 certificate (rustls takes no other).
    let ext = dir.join("client-ext.cnf");
    std::fs::write(&ext, "extendedKeyUsage=clientAuth\n").expect("write client-ext.cnf");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &path(&key),
            "-out",
            &path(&csr),
            "-subj",
            &format!("/CN={user}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &path(&csr),
            "-CA",
            &path(&certs.ca),
            "-CAkey",
            &path(&certs.ca_key),
            "-CAcreateserial",
            "-out",
            &path(&cert),
            "-days",
            "2",
            "-extfile",
            &path(&ext),
        ],
    );
    (cert, key)
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new(require_binary("openssl", "openssl"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
