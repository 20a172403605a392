//! Names on the server: the lock key, its fence counter and its release channel, and the value
//! a holder stores in the lock key. Documented in the crate docs ("On-server layout").

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use locksmith_core::{FencingToken, HolderInfo, LockKey};

/// Suffix of the fence counter's name.
pub(crate) const FENCE_SUFFIX: &str = ":locksmith:fence";
/// Suffix of the release channel's name.
pub(crate) const CHANNEL_SUFFIX: &str = ":locksmith:released";
/// Suffix of the fair-mode waiter queue's name.
pub(crate) const QUEUE_SUFFIX: &str = ":locksmith:queue";
/// Suffix of the fair-mode waiter deadlines' name.
pub(crate) const WAITERS_SUFFIX: &str = ":locksmith:waiters";
/// The first field of every value locksmith writes into a lock key.
pub(crate) const VALUE_TAG: &str = "ls2";
/// The first field of the values of earlier versions, which carried the token.
const OLD_VALUE_TAG: &str = "ls1";

/// The names one lock uses on the server: the lock key, its fence counter and its release
/// channel, one after the other in one string (made on every request: one allocation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Names {
    all: String,
    fence_at: usize,
    channel_at: usize,
}

impl Names {
    pub(crate) fn new(prefix: &str, key: &LockKey) -> Self {
        let key = key.as_str();
        let lock_len = prefix.len() + key.len();
        // Room for the derived names as if the lock name were wrapped in `{}` (at most 4
        // bytes more than needed).
        let mut all =
            String::with_capacity(3 * lock_len + 4 + FENCE_SUFFIX.len() + CHANNEL_SUFFIX.len());
        all.push_str(prefix);
        all.push_str(key);
        let fence_at = all.len();
        let wrap = wraps_as_tag(&all);
        push_derived(&mut all, fence_at, wrap, FENCE_SUFFIX);
        let channel_at = all.len();
        push_derived(&mut all, fence_at, wrap, CHANNEL_SUFFIX);
        Self {
            all,
            fence_at,
            channel_at,
        }
    }

    /// The lock key itself: prefix + key.
    pub(crate) fn lock(&self) -> &str {
        &self.all[..self.fence_at]
    }

    /// The fence counter, in the lock key's Cluster hash slot where its name allows.
    pub(crate) fn fence(&self) -> &str {
        &self.all[self.fence_at..self.channel_at]
    }

    /// The pub/sub channel a release is announced on.
    pub(crate) fn channel(&self) -> &str {
        &self.all[self.channel_at..]
    }

    /// Fair mode: the waiter queue (sorted set). Made when asked: only fair mode needs it.
    pub(crate) fn queue(&self) -> String {
        derived_as(self.lock(), wraps_as_tag(self.lock()), QUEUE_SUFFIX)
    }

    /// Fair mode: the waiters' entries (hash).
    pub(crate) fn waiters(&self) -> String {
        derived_as(self.lock(), wraps_as_tag(self.lock()), WAITERS_SUFFIX)
    }
}

/// Appends [`derived_as`] of the lock name (the first `lock_len` bytes of `all`).
fn push_derived(all: &mut String, lock_len: usize, wrap: bool, suffix: &str) {
    if wrap {
        all.push('{');
    }
    all.extend_from_within(..lock_len);
    if wrap {
        all.push('}');
    }
    all.push_str(suffix);
}

/// The Redis Cluster hash tag of `key`: the text between the first `{` and the first `}` after
/// it, when that text is not empty.
pub(crate) fn hash_tag(key: &str) -> Option<&str> {
    let open = key.find('{')?;
    let rest = &key[open + 1..];
    let close = rest.find('}')?;
    (close > 0).then(|| &rest[..close])
}

/// Whether `lock` itself becomes the hash tag of its derived names (see [`derived_as`]).
fn wraps_as_tag(lock: &str) -> bool {
    hash_tag(lock).is_none() && !lock.contains('}')
}

/// A name for data that belongs to `lock`, hashed by Redis Cluster to the same slot (`wrap`
/// is [`wraps_as_tag`] of `lock`):
/// - `lock` has a hash tag: `lock + suffix` (the tag still comes first);
/// - `lock` has no `}`: `{lock} + suffix` (the whole lock key becomes the tag);
/// - otherwise (a `}` but no tag, e.g. `a}b`) no name can share the slot: `lock + suffix`.
fn derived_as(lock: &str, wrap: bool, suffix: &str) -> String {
    if wrap {
        ["{", lock, "}", suffix].concat()
    } else {
        [lock, suffix].concat()
    }
}

/// A duration in whole milliseconds as the scripts take it, at least 1 (a TTL under a
/// millisecond must not read as "no expiry").
pub(crate) fn whole_ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// What an acquire script answered, decoded from its one integer reply (one integer costs the
/// server less than a table): the token when granted (always at least 1), else `-2 - PTTL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// Granted under this fencing token.
    Granted(u64),
    /// Held by another: the key's PTTL in ms (-1: no expiry, -2: free by the time it looked).
    Busy(i64),
}

impl Acquired {
    pub(crate) fn from_reply(n: i64) -> Self {
        match u64::try_from(n) {
            Ok(token) if token >= 1 => Self::Granted(token),
            _ => Self::Busy(-2 - n),
        }
    }
}

/// A random secret of 128 bits, as 32 hex digits.
pub(crate) fn secret() -> String {
    String::from_utf8(secret_digits().to_vec()).expect("hex digits are ASCII")
}

/// [`secret`]'s digits, on the stack.
fn secret_digits() -> [u8; 32] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = rand::random::<u128>();
    let mut digits = [0u8; 32];
    for (i, d) in digits.iter_mut().enumerate() {
        *d = HEX[((n >> (4 * (31 - i))) & 0xf) as usize];
    }
    digits
}

/// What a holder writes: `ls2:<secret>:<since_unix_ms>:<owner>`, stored by the acquire script
/// as sent. The grant's token is not in it: only grants move the fence counter, which is the
/// holder's token while the key is held (values of earlier versions, `ls1:`, carried it).
#[derive(Clone, Debug)]
pub(crate) struct ValueParts {
    /// `ls2:<secret>:`, shared by the attempt, its undo and the lease.
    prefix: Arc<str>,
    /// The whole value: the prefix, then `<since_unix_ms>:<owner>`.
    value: String,
}

/// Length of the owner prefix: the tag, `:`, 32 hex digits, `:`.
const PREFIX_LEN: usize = VALUE_TAG.len() + 34;

impl ValueParts {
    pub(crate) fn new(owner: &str) -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or_default();
        // Made on every attempt: two allocations (the value, and the prefix it starts with).
        let mut value = String::with_capacity(PREFIX_LEN + 21 + owner.len());
        value.push_str(VALUE_TAG);
        value.push(':');
        value.push_str(std::str::from_utf8(&secret_digits()).expect("hex digits are ASCII"));
        value.push(':');
        write!(value, "{since}:{owner}").expect("writing to a String cannot fail");
        Self {
            prefix: Arc::from(&value[..PREFIX_LEN]),
            value,
        }
    }

    /// The value the plain acquire script stores.
    pub(crate) fn value(&self) -> &str {
        &self.value
    }

    /// What the fair scripts take as the value's head: `ls2:<secret>` (the prefix without
    /// its last `:`); they store `<head>:<tail>`, with the tail's time of their own choosing.
    pub(crate) fn head(&self) -> &str {
        &self.prefix[..PREFIX_LEN - 1]
    }

    /// `<since_unix_ms>:<owner>`.
    pub(crate) fn tail(&self) -> &str {
        &self.value[PREFIX_LEN..]
    }

    /// What release and renew compare: `ls2:<secret>:`, the start of every value this grant
    /// wrote.
    pub(crate) fn owner_prefix(&self) -> Arc<str> {
        Arc::clone(&self.prefix)
    }
}

/// The owner label shown for a key held by a client that is not locksmith (redis-py's `Lock`,
/// redsync, a plain `SET key value NX PX`).
pub const FOREIGN_OWNER: &str = "(not locksmith: a plain SET NX lock)";

/// The owner prefix of a value written by locksmith (`ls2:<secret>:`, or `ls1:<secret>:` by
/// earlier builds), if it is one.
pub(crate) fn owner_prefix_of(value: &[u8]) -> Option<&[u8]> {
    let tag = [VALUE_TAG, OLD_VALUE_TAG]
        .iter()
        .find(|t| value.starts_with(t.as_bytes()))?
        .len();
    if value.get(tag) != Some(&b':') {
        return None;
    }
    let end = value[tag + 1..].iter().position(|b| *b == b':')?;
    Some(&value[..tag + 1 + end + 1])
}

/// Reads a lock key's value (and PTTL in ms, negative when none; and the key's fence counter,
/// read with them) as holder info. For a value locksmith wrote, the counter is the holder's
/// token (only grants move it); a value of an earlier version (`ls1:`) carries its own.
pub(crate) fn holder_from_value(value: &[u8], pttl_ms: i64, counter: Option<u64>) -> HolderInfo {
    let mut info = parse_value(value, counter).unwrap_or_else(|| HolderInfo::new(FOREIGN_OWNER));
    if pttl_ms >= 0 {
        info = info.lease_left(std::time::Duration::from_millis(pttl_ms as u64));
    }
    info
}

fn parse_value(value: &[u8], counter: Option<u64>) -> Option<HolderInfo> {
    let text = std::str::from_utf8(value).ok()?;
    let (tag, rest) = text.split_once(':')?;
    let (_secret, rest) = rest.split_once(':')?;
    let (token, rest) = match tag {
        VALUE_TAG => (counter, rest),
        OLD_VALUE_TAG => {
            let (token, rest) = rest.split_once(':')?;
            (Some(token.parse().ok()?), rest)
        }
        _ => return None,
    };
    let (since, owner) = rest.split_once(':')?;
    let since: u64 = since.parse().ok()?;
    let mut info =
        HolderInfo::new(owner).since(UNIX_EPOCH + std::time::Duration::from_millis(since));
    if let Some(t) = token {
        info = info.token(FencingToken(t));
    }
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(key: &str) -> Names {
        Names::new("", &LockKey::new(key).unwrap())
    }

    #[test]
    fn derived_names_share_the_hash_tag() {
        let n = names("jobs/nightly");
        assert_eq!(n.lock(), "jobs/nightly");
        assert_eq!(n.fence(), "{jobs/nightly}:locksmith:fence");
        assert_eq!(hash_tag(n.fence()), Some("jobs/nightly"));
        let n = names("{user42}:cart");
        assert_eq!(n.fence(), "{user42}:cart:locksmith:fence");
        assert_eq!(hash_tag(n.fence()), Some("user42"));
        // `{}` is no tag: Cluster hashes the whole key, and so the whole key is the tag.
        let n = names("a{}b");
        assert_eq!(hash_tag(n.lock()), None);
        assert_eq!(n.fence(), "a{}b:locksmith:fence");
        let n = names("a{b");
        assert_eq!(hash_tag(n.fence()), Some("a{b"));
        let n = Names::new("app:", &LockKey::new("k").unwrap());
        assert_eq!(n.lock(), "app:k");
        assert_eq!(n.channel(), "{app:k}:locksmith:released");
    }

    #[test]
    fn acquire_replies_decode() {
        assert_eq!(Acquired::from_reply(1), Acquired::Granted(1));
        assert_eq!(
            Acquired::from_reply(1_764_000_000_000_000),
            Acquired::Granted(1_764_000_000_000_000)
        );
        assert_eq!(Acquired::from_reply(0), Acquired::Busy(-2));
        assert_eq!(Acquired::from_reply(-1), Acquired::Busy(-1));
        assert_eq!(Acquired::from_reply(-2), Acquired::Busy(0));
        assert_eq!(Acquired::from_reply(-30_002), Acquired::Busy(30_000));
    }

    #[test]
    fn values_round_trip_and_foreign_values_are_shown_as_such() {
        let parts = ValueParts::new("host:1234 worker");
        let prefix = parts.owner_prefix();
        assert_eq!(prefix.len(), 37, "{prefix}");
        assert!(
            prefix.starts_with("ls2:") && prefix.ends_with(':'),
            "{prefix}"
        );
        assert!(
            prefix[4..36].bytes().all(|b| b.is_ascii_hexdigit()),
            "{prefix}"
        );
        assert_eq!(parts.head(), &prefix[..36]);
        assert_ne!(ValueParts::new("x").owner_prefix(), prefix);
        assert_eq!(parts.value(), [&*prefix, parts.tail()].concat());
        assert!(
            parts.tail().ends_with(":host:1234 worker"),
            "{}",
            parts.tail()
        );
        let info = holder_from_value(parts.value().as_bytes(), 900, Some(17));
        assert_eq!(info.owner, "host:1234 worker");
        assert_eq!(info.token, Some(FencingToken(17)));
        assert!(info.since.is_some());
        assert_eq!(info.lease_left, Some(std::time::Duration::from_millis(900)));
        assert_eq!(
            owner_prefix_of(parts.value().as_bytes()),
            Some(prefix.as_bytes())
        );
        // A value of an earlier version carries its token; the counter is not asked.
        let old = b"ls1:0123456789abcdef0123456789abcdef:42:1700000000000:w:1";
        let info = holder_from_value(old, -1, Some(99));
        assert_eq!(
            (info.owner.as_str(), info.token),
            ("w:1", Some(FencingToken(42)))
        );
        assert_eq!(
            owner_prefix_of(old),
            Some(&b"ls1:0123456789abcdef0123456789abcdef:"[..])
        );
        let info = holder_from_value(b"3f2a-some-redis-py-token", -1, Some(5));
        assert_eq!(info.token, None);
        assert_eq!(info.owner, FOREIGN_OWNER);
        assert_eq!(info.lease_left, None);
    }
}
