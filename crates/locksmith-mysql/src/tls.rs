//! TLS for every connection of the backend: the MySQL client's `ssl-mode` over
//! mysql_async's rustls support, `PREFERRED`'s fall-back to plain TCP, and clear errors when
//! the handshake fails.

use std::sync::atomic::{AtomicBool, Ordering};

use locksmith_sql::{TlsMode, TlsSettings};
use mysql_async::{ClientIdentity, DriverError, Opts, OptsBuilder, SslOpts};

/// The options every connection is made with, TLS included.
#[derive(Debug)]
pub(crate) struct TlsOpts {
    settings: TlsSettings,
    /// With the URL's TLS settings.
    with_tls: Opts,
    /// Without TLS: what `PREFERRED` uses once the server said it has none.
    plain: Opts,
    /// Set when a `PREFERRED` connect found a server without TLS: later connects go plain
    /// at once (for this backend's lifetime).
    server_without_tls: AtomicBool,
}

impl TlsOpts {
    /// `opts` (without TLS) with `settings` applied.
    pub(crate) fn new(opts: Opts, settings: TlsSettings) -> Self {
        let ssl = match settings.mode {
            TlsMode::Disable => None,
            mode => {
                // The roots were read (and checked) from ssl-ca, or from this machine, when the
                // URL was parsed. Modes that verify nothing keep the driver's built-in roots
                // only because its verifier refuses to be built without any.
                let roots = settings.roots.iter().map(|c| c.to_vec().into()).collect();
                let mut ssl = SslOpts::default()
                    .with_root_certs(roots)
                    .with_disable_built_in_roots(mode >= TlsMode::VerifyCa)
                    .with_danger_accept_invalid_certs(mode < TlsMode::VerifyCa)
                    .with_danger_skip_domain_validation(mode == TlsMode::VerifyCa);
                if let Some(c) = &settings.client {
                    ssl = ssl.with_client_identity(Some(ClientIdentity::new(
                        c.cert_path.clone().into(),
                        c.key_path.clone().into(),
                    )));
                }
                Some(ssl)
            }
        };
        let with_tls = OptsBuilder::from_opts(opts.clone()).ssl_opts(ssl).into();
        Self {
            settings,
            with_tls,
            plain: opts,
            server_without_tls: AtomicBool::new(false),
        }
    }

    /// The options for the next connect.
    pub(crate) fn current(&self) -> &Opts {
        if self.server_without_tls.load(Ordering::Relaxed) {
            &self.plain
        } else {
            &self.with_tls
        }
    }

    /// True when `e` says the server has no TLS and the mode lets the connect be made again
    /// without it (`PREFERRED`); [`current`](Self::current) is then plain.
    pub(crate) fn fall_back(&self, e: &mysql_async::Error) -> bool {
        let no_tls = matches!(
            e,
            mysql_async::Error::Driver(DriverError::NoClientSslFlagFromServer)
        );
        if no_tls && self.settings.mode == TlsMode::Prefer {
            tracing::debug!("the MySQL server has no TLS; ssl-mode=PREFERRED goes on without");
            self.server_without_tls.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// A clear account of a connect error that TLS caused; `None` for any other error.
    pub(crate) fn explain(&self, e: &mysql_async::Error) -> Option<String> {
        if self.settings.mode == TlsMode::Disable {
            return None;
        }
        if matches!(
            e,
            mysql_async::Error::Driver(DriverError::NoClientSslFlagFromServer)
        ) {
            return Some(self.settings.no_tls_on_server());
        }
        self.settings.explain(e, self.with_tls.ip_or_hostname())
    }
}
