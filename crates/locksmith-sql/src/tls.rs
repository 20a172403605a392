//! TLS settings shared by the SQL backends: the URL options (libpq's and the MySQL client's
//! names), the certificates they name, the rustls client configuration, and one wording of
//! TLS failures.

use std::error::Error as StdError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use locksmith_core::{Error, Result};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// How much TLS a connection asks for, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it (certificate not checked), else plain TCP.
    Prefer,
    /// TLS or no connection; the certificate is not checked.
    Require,
    /// TLS with a certificate signed by a trusted CA, whatever host it names.
    VerifyCa,
    /// TLS with a certificate signed by a trusted CA and naming the host connected to.
    VerifyFull,
}

const MODES: [TlsMode; 5] = [
    TlsMode::Disable,
    TlsMode::Prefer,
    TlsMode::Require,
    TlsMode::VerifyCa,
    TlsMode::VerifyFull,
];

/// One backend's spelling of the TLS options.
#[derive(Debug)]
pub struct TlsDialect {
    /// The option that chooses the mode (`sslmode`, `ssl-mode`).
    pub mode: &'static str,
    /// The option naming the PEM file of trusted CAs (`sslrootcert`, `ssl-ca`).
    pub ca: &'static str,
    /// The option naming the client certificate chain (PEM).
    pub cert: &'static str,
    /// The option naming the client certificate's private key (PEM).
    pub key: &'static str,
    /// The mode values, in [`TlsMode`] order.
    words: [&'static str; 5],
    /// The mode when the URL names none.
    default: TlsMode,
    /// libpq: `require` with a CA file checks the chain (`verify-ca`). Any other CA file
    /// with a mode that does not verify is refused rather than silently unused.
    require_with_ca_verifies: bool,
    /// How to turn TLS on at the server, for messages.
    server_hint: &'static str,
    /// Why this backend's `verify-ca` still compares the host name, if it does.
    verify_ca_checks_name: Option<&'static str>,
}

/// PostgreSQL's (libpq's) options: `sslmode`, `sslrootcert`, `sslcert`, `sslkey`.
pub const POSTGRES_TLS: TlsDialect = TlsDialect {
    mode: "sslmode",
    ca: "sslrootcert",
    cert: "sslcert",
    key: "sslkey",
    words: ["disable", "prefer", "require", "verify-ca", "verify-full"],
    default: TlsMode::Prefer,
    require_with_ca_verifies: true,
    server_hint: "ssl=on with ssl_cert_file and ssl_key_file",
    verify_ca_checks_name: None,
};

/// The MySQL client's options: `ssl-mode`, `ssl-ca`, `ssl-cert`, `ssl-key`.
pub const MYSQL_TLS: TlsDialect = TlsDialect {
    mode: "ssl-mode",
    ca: "ssl-ca",
    cert: "ssl-cert",
    key: "ssl-key",
    words: [
        "DISABLED",
        "PREFERRED",
        "REQUIRED",
        "VERIFY_CA",
        "VERIFY_IDENTITY",
    ],
    default: TlsMode::Prefer,
    require_with_ca_verifies: false,
    server_hint: "ssl_cert and ssl_key in the server's configuration",
    verify_ca_checks_name: Some(
        "mysql_async 0.37.1 cannot skip the host-name check (its issue #404), so VERIFY_CA \
         checks the name too in this build",
    ),
};

/// A client certificate and its key, read from the URL's files.
pub struct ClientCert {
    /// The certificate file.
    pub cert_path: PathBuf,
    /// The key file.
    pub key_path: PathBuf,
    /// The certificate chain.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key.
    pub key: PrivateKeyDer<'static>,
}

impl fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCert")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

/// The TLS options of one URL, with the files they name read and checked.
#[derive(Debug)]
pub struct TlsSettings {
    /// The mode in effect.
    pub mode: TlsMode,
    /// The CA file given, if any.
    pub ca_path: Option<PathBuf>,
    /// The trusted roots: the CA file's certificates, else (when verifying) this machine's
    /// root certificates; empty when nothing is verified.
    pub roots: Vec<CertificateDer<'static>>,
    /// The client certificate, when the URL gives one.
    pub client: Option<ClientCert>,
    dialect: &'static TlsDialect,
}

impl TlsSettings {
    /// Takes `dialect`'s options out of `url`, reads the files they name, and checks them.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] (with `masked`) for an unknown mode, a file that cannot be read
    /// or holds no certificate/key, a certificate without its key, a CA file with a mode
    /// that would not use it, or a verifying mode on a machine without root certificates.
    pub fn take(url: &mut url::Url, dialect: &'static TlsDialect, masked: &str) -> Result<Self> {
        let bad = |reason: String| Error::InvalidUrl {
            url: masked.to_owned(),
            reason,
        };
        let mut mode = None;
        let (mut ca, mut cert, mut key) = (None, None, None);
        let mut rest = Vec::new();
        for (name, value) in url.query_pairs() {
            let slot = match &*name {
                n if n == dialect.mode => {
                    mode = Some(dialect.parse_mode(&value).ok_or_else(|| {
                        bad(format!(
                            "`{}={value}` is not a TLS mode; use one of {}",
                            dialect.mode,
                            dialect.words.join(", ")
                        ))
                    })?);
                    continue;
                }
                n if n == dialect.ca => &mut ca,
                n if n == dialect.cert => &mut cert,
                n if n == dialect.key => &mut key,
                _ => {
                    rest.push((name.into_owned(), value.into_owned()));
                    continue;
                }
            };
            *slot = Some(PathBuf::from(&*value));
        }
        if rest.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(&rest);
        }
        let mut mode = mode.unwrap_or(dialect.default);
        if ca.is_some() && mode < TlsMode::VerifyCa {
            if mode == TlsMode::Require && dialect.require_with_ca_verifies {
                mode = TlsMode::VerifyCa;
            } else {
                return Err(bad(format!(
                    "{} is used only to verify the server; with {}={} it would be ignored: \
                     add {}={} (or {})",
                    dialect.ca,
                    dialect.mode,
                    dialect.word(mode),
                    dialect.mode,
                    dialect.word(TlsMode::VerifyFull),
                    dialect.word(TlsMode::VerifyCa)
                )));
            }
        }
        let roots = match (&ca, mode >= TlsMode::VerifyCa) {
            (Some(path), _) => {
                read_certs(path).map_err(|why| bad(format!("{}: {why}", dialect.ca)))?
            }
            (None, true) => platform_roots().map_err(|why| {
                bad(format!(
                    "{why}; name the CA that signed the server's certificate with {}=PATH",
                    dialect.ca
                ))
            })?,
            (None, false) => Vec::new(),
        };
        let client = match (cert, key) {
            (None, None) => None,
            (Some(cert_path), Some(key_path)) => {
                let chain = read_certs(&cert_path)
                    .map_err(|why| bad(format!("{}: {why}", dialect.cert)))?;
                let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| {
                    bad(format!(
                        "{}: no private key read from {} ({e})",
                        dialect.key,
                        key_path.display()
                    ))
                })?;
                Some(ClientCert {
                    cert_path,
                    key_path,
                    chain,
                    key,
                })
            }
            _ => {
                return Err(bad(format!(
                    "{} and {} go together: give both or neither",
                    dialect.cert, dialect.key
                )));
            }
        };
        Ok(Self {
            mode,
            ca_path: ca,
            roots,
            client,
            dialect,
        })
    }

    /// A rustls client configuration for this mode, on the ring provider: no check of the
    /// certificate for `prefer`/`require` (the handshake's signatures are still checked),
    /// the chain only for `verify-ca`, chain and host name for `verify-full`.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] (with `masked`) when a root or the client key is unusable.
    pub fn client_config(&self, masked: &str) -> Result<rustls::ClientConfig> {
        let bad = |reason: String| Error::InvalidUrl {
            url: masked.to_owned(),
            reason,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut store = RootCertStore::empty();
        let (added, _ignored) = store.add_parsable_certificates(self.roots.iter().cloned());
        if added == 0 && self.mode >= TlsMode::VerifyCa {
            return Err(bad(format!(
                "{}: none of its certificates can be used as a trust anchor",
                self.dialect.ca
            )));
        }
        let webpki =
            WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone()).build();
        let verifier: Arc<dyn ServerCertVerifier> = match self.mode {
            TlsMode::VerifyFull => webpki.map_err(|e| bad(format!("{}: {e}", self.dialect.ca)))?,
            TlsMode::VerifyCa => Arc::new(ChainOnly(
                webpki.map_err(|e| bad(format!("{}: {e}", self.dialect.ca)))?,
            )),
            _ => Arc::new(Unverified(provider.signature_verification_algorithms)),
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(format!("TLS set-up: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        match &self.client {
            None => Ok(builder.with_no_client_auth()),
            Some(c) => builder
                .with_client_auth_cert(c.chain.clone(), c.key.clone_key())
                .map_err(|e| bad(format!("{}/{}: {e}", self.dialect.cert, self.dialect.key))),
        }
    }

    /// The mode as this backend spells it.
    pub fn mode_word(&self) -> &'static str {
        self.dialect.word(self.mode)
    }

    /// What to say when the server answered that it has no TLS while this mode requires it.
    pub fn no_tls_on_server(&self) -> String {
        format!(
            "the server does not support TLS, and {}={} requires it: use {}={} (or {}), or \
             enable TLS on the server ({})",
            self.dialect.mode,
            self.mode_word(),
            self.dialect.mode,
            self.dialect.word(TlsMode::Disable),
            self.dialect.word(TlsMode::Prefer),
            self.dialect.server_hint
        )
    }

    /// A clear account of a TLS failure somewhere in `err`'s chain of causes, saying what
    /// was wrong and what to do; `None` when the chain holds no TLS error.
    pub fn explain(&self, err: &(dyn StdError + 'static), host: &str) -> Option<String> {
        let tls = find_rustls_error(err)?;
        let d = self.dialect;
        let trusted = match &self.ca_path {
            Some(p) => format!("the CA in {}={}", d.ca, p.display()),
            None => format!(
                "a root certificate of this machine (none named with {})",
                d.ca
            ),
        };
        let what = match tls {
            rustls::Error::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
                    "the server's certificate is not signed by {trusted}: name the CA that \
                     signed it with {}=PATH, or use {}={} without {} to encrypt without \
                     verifying",
                    d.ca,
                    d.mode,
                    d.word(TlsMode::Require),
                    d.ca
                ),
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. }
                    if self.mode == TlsMode::VerifyCa =>
                {
                    format!(
                        "the server's certificate does not name the host `{host}` ({c}), and {}: \
                         connect by a name the certificate lists, or use {}={} to encrypt \
                         without verifying",
                        d.verify_ca_checks_name.unwrap_or("the name was checked"),
                        d.mode,
                        d.word(TlsMode::Require)
                    )
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => format!(
                    "the server's certificate does not name the host `{host}` ({c}): connect \
                     by a name the certificate lists, or use {}={} to check the CA only",
                    d.mode,
                    d.word(TlsMode::VerifyCa)
                ),
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. } => format!(
                    "the server's certificate is expired or not yet valid ({c}); renew it \
                     (and check this machine's clock)"
                ),
                other => format!("the server's certificate was refused: {other}"),
            },
            rustls::Error::AlertReceived(alert) => format!(
                "the server refused the TLS handshake ({alert:?}): if it requires a client \
                 certificate, give one with {} and {}",
                d.cert, d.key
            ),
            other => format!("the TLS handshake failed: {other}"),
        };
        Some(format!("TLS ({}={}): {what}", d.mode, self.mode_word()))
    }
}

impl TlsDialect {
    fn parse_mode(&self, value: &str) -> Option<TlsMode> {
        let i = self
            .words
            .iter()
            .position(|w| w.eq_ignore_ascii_case(value))?;
        Some(MODES[i])
    }

    fn word(&self, mode: TlsMode) -> &'static str {
        self.words[mode as usize]
    }
}

/// The certificates of a PEM (or single DER) file.
fn read_certs(path: &Path) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {} ({e})", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not a PEM certificate file ({e})", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

fn platform_roots() -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    let found = rustls_native_certs::load_native_certs();
    if found.certs.is_empty() {
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        return Err(format!(
            "no root certificates found on this machine ({})",
            errors.join("; ")
        ));
    }
    Ok(found.certs)
}

/// The first rustls error in `err`'s chain, looking inside I/O errors too (their `source`
/// skips the error they wrap).
fn find_rustls_error<'e>(err: &'e (dyn StdError + 'static)) -> Option<&'e rustls::Error> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        next = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    None
}

/// `verify-ca`: the chain must lead to a trusted root; the host name is not compared.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        // The chain is checked before the name, so a name error means the chain was good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer`/`require`: any certificate is taken (libpq's and MySQL's meaning); the
/// handshake's signatures are still checked against it.
#[derive(Debug)]
struct Unverified(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
