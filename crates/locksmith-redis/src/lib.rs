//! # locksmith-redis
//! (docs to come)

mod backend;
mod conn;
mod error;
mod layout;
mod lease;
mod scripts;
mod url;
mod waker;

pub use backend::{RedisBackend, capabilities};
pub use layout::FOREIGN_OWNER;
pub use url::{DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT};
