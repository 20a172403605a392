//! TLS for every connection of the backend: libpq's `sslmode` over rustls, with the
//! certificate check the mode asks for, and clear errors when the handshake fails.

use std::fmt;

use locksmith_core::Result;
use locksmith_sql::{TlsMode, TlsSettings};
use tokio_postgres::config::Host;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The URL's TLS settings and the connector built from them once.
pub(crate) struct PgTls {
    settings: TlsSettings,
    connector: MakeRustlsConnect,
    /// The host name(s) connected to, for messages.
    hosts: String,
}

impl fmt::Debug for PgTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTls")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl PgTls {
    pub(crate) fn new(
        settings: TlsSettings,
        config: &tokio_postgres::Config,
        masked: &str,
    ) -> Result<Self> {
        let connector = MakeRustlsConnect::new(settings.client_config(masked)?);
        let hosts = config
            .get_hosts()
            .iter()
            .map(|h| match h {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            })
            .collect::<Vec<_>>()
            .join(",");
        Ok(Self {
            settings,
            connector,
            hosts,
        })
    }

    /// What connects (and sends cancel requests) with this URL's TLS settings.
    pub(crate) fn connector(&self) -> MakeRustlsConnect {
        self.connector.clone()
    }

    /// A clear account of a connect error that TLS caused; `None` for any other error.
    pub(crate) fn explain(&self, e: &tokio_postgres::Error) -> Option<String> {
        if self.settings.mode == TlsMode::Disable {
            return None;
        }
        if let Some(db) = e.as_db_error()
            && db.message().contains("client certificate")
        {
            return Some(format!(
                "{} ({}): give one with sslcert=PATH and sslkey=PATH",
                db.message(),
                db.code().code()
            ));
        }
        if let Some(why) = self.settings.explain(e, &self.hosts) {
            return Some(why);
        }
        // tokio-postgres says so in words only (its error kinds are private), in the cause.
        std::error::Error::source(e)
            .is_some_and(|cause| cause.to_string().contains("server does not support TLS"))
            .then(|| self.settings.no_tls_on_server())
    }
}
