//! Fencing tokens.

use std::fmt;

/// A fencing token: unique and strictly increasing across successive holders of one key.
///
/// Hand it to the protected resource with every write; the resource remembers the largest
/// token it has seen for the key and rejects smaller ones, so a holder that paused past its
/// lease cannot corrupt data written by the next holder.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct FencingToken(pub u64);

impl FencingToken {
    /// The token as a number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<FencingToken> for u64 {
    fn from(t: FencingToken) -> u64 {
        t.0
    }
}
