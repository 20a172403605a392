//! Choosing a backend by URL scheme.

use std::sync::Arc;

use locksmith_core::{Backend, Error, Locker, MemoryBackend, Result, mask_url};

/// Schemes locksmith knows, with the cargo feature that provides each.
const KNOWN: &[(&str, &str, &str)] = &[
    ("memory", "memory", "in-process memory"),
    ("file", "file", "local file"),
    ("redis", "redis", "Redis"),
    ("rediss", "redis", "Redis over TLS"),
    ("redlock", "redis", "Redlock"),
    ("redis+cluster", "redis", "Redis Cluster"),
    ("rediss+cluster", "redis", "Redis Cluster over TLS"),
    ("postgres", "postgres", "PostgreSQL"),
    ("postgresql", "postgres", "PostgreSQL"),
    ("mysql", "mysql", "MySQL/MariaDB"),
    ("mariadb", "mysql", "MySQL/MariaDB"),
    ("zookeeper", "zookeeper", "ZooKeeper"),
    ("etcd", "etcd", "etcd"),
];

/// Features that exist in this version of the crate (compiled in or not).
const EXISTING_FEATURES: &[&str] = &["file", "redis", "postgres", "mysql", "etcd", "zookeeper"];

/// Opens a backend by URL and wraps it in a [`Locker`].
///
/// # Errors
/// [`Error::InvalidUrl`] when the URL has no scheme, an unknown scheme, or names a backend
/// that is not compiled into this build (the message names the cargo feature to enable).
pub fn open(url: &str) -> Result<Locker> {
    Ok(Locker::new(backend_from_url(url)?))
}

/// Opens a backend by URL.
///
/// # Errors
/// As [`open`].
pub fn backend_from_url(url: &str) -> Result<Arc<dyn Backend>> {
    let masked = mask_url(url);
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(Error::InvalidUrl {
            url: masked,
            reason: "expected SCHEME://…, for example file:///var/lock/myapp, memory://tests \
                     or redis://127.0.0.1:6379"
                .into(),
        });
    };
    match scheme.to_ascii_lowercase().as_str() {
        "memory" => Ok(Arc::new(MemoryBackend::named(rest))),
        #[cfg(feature = "file")]
        "file" => Ok(Arc::new(locksmith_file::FileBackend::from_url(url)?)),
        #[cfg(feature = "redis")]
        "redis" | "rediss" => Ok(Arc::new(locksmith_redis::RedisBackend::from_url(url)?)),
        #[cfg(feature = "redis")]
        "redis+cluster" | "rediss+cluster" => Ok(Arc::new(
            locksmith_redis::RedisClusterBackend::from_url(url)?,
        )),
        #[cfg(feature = "redis")]
        "redlock" => Ok(Arc::new(locksmith_redis::RedlockBackend::from_url(url)?)),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(Arc::new(locksmith_postgres::PgBackend::from_url(url)?)),
        #[cfg(feature = "mysql")]
        "mysql" | "mariadb" => Ok(Arc::new(locksmith_mysql::MySqlBackend::from_url(url)?)),
        #[cfg(feature = "etcd")]
        "etcd" => Ok(Arc::new(locksmith_etcd::EtcdBackend::from_url(url)?)),
        #[cfg(feature = "zookeeper")]
        "zookeeper" => Ok(Arc::new(locksmith_zookeeper::ZooKeeperBackend::from_url(
            url,
        )?)),
        other => {
            let reason = match KNOWN.iter().find(|(s, _, _)| *s == other) {
                Some((_, feature, what)) if EXISTING_FEATURES.contains(feature) => format!(
                    "the {what} backend is not compiled into this build: enable the cargo \
                     feature `{feature}` of the `locksmith` crate"
                ),
                Some((_, feature, what)) => format!(
                    "the {what} backend (cargo feature `{feature}`) is not available in \
                     locksmith {} yet",
                    env!("CARGO_PKG_VERSION")
                ),
                None => {
                    let known: Vec<&str> = KNOWN.iter().map(|(s, _, _)| *s).collect();
                    format!(
                        "unknown scheme `{other}`; known schemes: {}",
                        known.join(", ")
                    )
                }
            };
            Err(Error::InvalidUrl {
                url: masked,
                reason,
            })
        }
    }
}

/// The embedded default: a `file://` URL in the per-user state folder
/// (`$XDG_STATE_HOME/locksmith`, else `~/.local/state/locksmith`, else the temp folder).
///
/// # Errors
/// [`Error::InvalidUrl`] when the state folder cannot be written as a URL.
#[cfg(feature = "file")]
pub fn default_url() -> Result<String> {
    locksmith_file::dir_url(&locksmith_file::default_state_dir())
}

/// Without the file backend the embedded default is a process-local memory table.
///
/// # Errors
/// None in this configuration.
#[cfg(not(feature = "file"))]
pub fn default_url() -> Result<String> {
    Ok("memory://default".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_missing_schemes_say_what_to_do() {
        #[cfg(not(feature = "redis"))]
        {
            let err = open("redis://:hunter2@localhost:6379")
                .unwrap_err()
                .to_string();
            assert!(err.contains("`redis`") && !err.contains("hunter2"), "{err}");
        }
        #[cfg(feature = "redis")]
        {
            // Opening connects lazily; the URL shown never carries the password.
            let locker = open("redis://:hunter2@localhost:6379").unwrap();
            assert_eq!(locker.display_url(), "redis://:***@localhost:6379");
            let locker = open("redis+cluster://:hunter2@10.0.0.1:7000,10.0.0.2:7000").unwrap();
            assert_eq!(
                locker.display_url(),
                "redis+cluster://:***@10.0.0.1:7000,10.0.0.2:7000"
            );
        }
        let err = open("gopher://x").unwrap_err().to_string();
        assert!(err.contains("unknown scheme `gopher`"), "{err}");
        let err = open("localhost:6379").unwrap_err().to_string();
        assert!(err.contains("SCHEME://"), "{err}");
    }

    #[test]
    fn memory_names_share_a_table() {
        let a = open("memory://shared-name").unwrap();
        let b = open("memory://shared-name").unwrap();
        assert_eq!(a.display_url(), b.display_url());
    }
}
