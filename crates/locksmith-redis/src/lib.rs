//! # locksmith-redis
//! (docs to come)

mod backend;
mod conn;
mod detached;
mod error;
mod fanout;
mod layout;
mod lease;
mod redlock;
mod scripts;
mod url;
mod waker;

pub use backend::{RedisBackend, capabilities};
pub use layout::FOREIGN_OWNER;
pub use redlock::{RedlockBackend, redlock_capabilities};
pub use url::{DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT};
