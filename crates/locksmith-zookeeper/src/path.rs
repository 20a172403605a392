//! Key → ZooKeeper path. The key's `/`-separated segments become path segments (so a Curator
//! `InterProcessMutex` on `/jobs/nightly` and a locksmith lock on key `jobs/nightly` meet);
//! each segment is escaped so that every key maps to a distinct, legal path.

/// The lock folder of `key`: `/` + escaped segments joined by `/`.
pub(crate) fn lock_dir(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 8);
    for (i, seg) in key.split('/').enumerate() {
        out.push('/');
        out.push_str(&escape_segment(seg, i == 0));
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    for b in c.encode_utf8(&mut buf).bytes() {
        out.push_str(&format!("%{b:02X}"));
    }
}

/// Characters ZooKeeper refuses in node names (`PathUtils.validatePath`).
fn zk_forbidden(c: char) -> bool {
    // Java checks UTF-16 units: U+D800–U+F8FF includes the surrogates, so every character
    // beyond U+FFFF (emoji, say) is refused too.
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{e000}'..='\u{f8ff}' | '\u{fff0}'..)
}

fn escape_segment(seg: &str, top: bool) -> String {
    match seg {
        // An empty segment (`a//b`, a leading or trailing `/`) cannot be a node name; `%00`
        // never comes from escaping since keys cannot contain NUL.
        "" => return "%00".to_owned(),
        "." => return "%2E".to_owned(),
        ".." => return "%2E%2E".to_owned(),
        "zookeeper" if top => return "%7Aookeeper".to_owned(),
        _ => {}
    }
    let mut out = String::with_capacity(seg.len());
    for c in seg.chars() {
        if c == '%' || zk_forbidden(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    // A folder segment must never look like a lock node of its parent's lock.
    out.replace("lock-", "lock%2D")
}

/// The name prefix of our lock node, Curator's protected-mode layout: `_c_<uuid>-lock-`.
pub(crate) fn node_prefix(uuid: &str) -> String {
    format!("_c_{uuid}-lock-")
}

/// The sequence number of a lock node (digits after the last `lock-`), or `None` for any other
/// child (lock folders of longer keys, kazoo's `__lock__` nodes).
pub(crate) fn sequence(name: &str) -> Option<u64> {
    let (_, digits) = name.rsplit_once("lock-")?;
    if digits.len() >= 10 && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }
}

/// The lock nodes among `children`, in sequence order.
pub(crate) fn line(mut children: Vec<String>) -> Vec<String> {
    children.retain(|c| sequence(c).is_some());
    children.sort_by_key(|c| sequence(c));
    children
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping() {
        assert_eq!(lock_dir("jobs/nightly"), "/jobs/nightly");
        assert_eq!(lock_dir("a b%"), "/a b%25");
        assert_eq!(lock_dir("/x/"), "/%00/x/%00");
        assert_eq!(lock_dir("./.."), "/%2E/%2E%2E");
        assert_eq!(lock_dir("zookeeper/zookeeper"), "/%7Aookeeper/zookeeper");
        assert_eq!(lock_dir("a/my-lock-0000000001"), "/a/my-lock%2D0000000001");
        assert_eq!(lock_dir("\u{7f}"), "/%7F");
        assert_eq!(lock_dir("ключ"), "/ключ");
        assert_eq!(lock_dir("🔒"), "/%F0%9F%94%92");
    }

    #[test]
    fn lock_nodes_sort_by_sequence() {
        let kids = vec![
            "_c_b-lock-0000000012".to_owned(),
            "sub".to_owned(),
            "_c_a-lock-0000000003".to_owned(),
            "x__lock__0000000001".to_owned(),
        ];
        assert_eq!(
            line(kids),
            vec!["_c_a-lock-0000000003", "_c_b-lock-0000000012"]
        );
    }
}
