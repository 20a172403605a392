//! `file://` URLs: parsing into a lock folder, and writing one for a folder.

use std::path::{Path, PathBuf};

use locksmith_core::{Error, Result, mask_url};
use url::Url;

const EXAMPLE: &str = "file:///var/lock/myapp";

fn invalid(url: &str, reason: impl Into<String>) -> Error {
    Error::InvalidUrl {
        url: mask_url(url),
        reason: reason.into(),
    }
}

/// The lock folder named by a `file://` URL.
///
/// The path must be absolute (`file:///abs/dir`, three slashes; `file://localhost/abs/dir`
/// is the same) and is percent-decoded. No query parameters are defined yet, so any is an
/// error, as are a fragment and user info.
pub(crate) fn parse(url: &str) -> Result<PathBuf> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(invalid(
            url,
            format!("expected file:///ABSOLUTE/FOLDER, for example {EXAMPLE}"),
        ));
    };
    if !scheme.eq_ignore_ascii_case("file") {
        return Err(invalid(
            url,
            format!("the file backend needs a file:// URL, not {scheme}://; for example {EXAMPLE}"),
        ));
    }
    if rest.is_empty() || rest.starts_with(['?', '#']) {
        return Err(invalid(
            url,
            format!(
                "the URL names no folder; write file:///ABSOLUTE/FOLDER, for example {EXAMPLE}"
            ),
        ));
    }
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority.contains('@') {
        return Err(invalid(
            url,
            "a file:// URL takes no user name or password; remove the part before `@`",
        ));
    }
    let parsed = Url::parse(url).map_err(|e| {
        invalid(
            url,
            format!("{e}; write file:///ABSOLUTE/FOLDER, for example {EXAMPLE}"),
        )
    })?;
    match parsed.host_str() {
        None | Some("") | Some("localhost") => {}
        Some(host) => {
            return Err(invalid(
                url,
                format!(
                    "`{host}` is read as a host name, and the file backend only works on this \
                     machine with an absolute path: write file:///ABSOLUTE/FOLDER (three \
                     slashes); a relative folder is not accepted, make it absolute first"
                ),
            ));
        }
    }
    if let Some((name, _)) = parsed.query_pairs().next() {
        return Err(invalid(
            url,
            format!(
                "unknown query parameter `{name}`: the file backend takes no query parameters; \
                 remove everything from `?`"
            ),
        ));
    }
    if parsed.fragment().is_some() {
        return Err(invalid(
            url,
            "a file:// URL takes no `#fragment`; if the folder name contains `#`, write it as %23",
        ));
    }
    let path = parsed.to_file_path().map_err(|()| {
        invalid(
            url,
            format!("the path is not an absolute local path; write file:///ABSOLUTE/FOLDER, for example {EXAMPLE}"),
        )
    })?;
    Ok(path)
}

/// A `file://` URL for `dir`, percent-encoded so that any folder name (spaces, `%`, `#`, `?`)
/// survives [`crate::FileBackend::from_url`]. A relative `dir` is made absolute against the
/// current folder first.
///
/// # Errors
/// [`Error::InvalidUrl`] when `dir` cannot be made absolute or written as a URL.
pub fn dir_url(dir: &Path) -> Result<String> {
    let shown = format!("file://{}", dir.display());
    let abs = std::path::absolute(dir).map_err(|e| {
        invalid(
            &shown,
            format!("cannot make the folder absolute ({e}); pass an absolute path"),
        )
    })?;
    let url = Url::from_directory_path(&abs).map_err(|()| {
        invalid(
            &shown,
            "cannot be written as a file:// URL; pass an absolute path",
        )
    })?;
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_urls() {
        assert_eq!(
            parse("file:///var/lock/app").unwrap(),
            Path::new("/var/lock/app")
        );
        assert_eq!(
            parse("file:///var/lock/app/").unwrap(),
            Path::new("/var/lock/app/")
        );
        assert_eq!(parse("FILE:///x").unwrap(), Path::new("/x"));
        assert_eq!(parse("file://localhost/x").unwrap(), Path::new("/x"));
        assert_eq!(parse("file:///a%20b/%25c").unwrap(), Path::new("/a b/%c"));
        assert_eq!(
            parse("file:///with space").unwrap(),
            Path::new("/with space")
        );
        assert_eq!(parse("file:///x?").unwrap(), Path::new("/x"));
    }

    #[test]
    fn bad_urls_say_what_to_write() {
        let err = |u: &str| parse(u).unwrap_err().to_string();
        let e = err("file://relative/dir");
        assert!(e.contains("`relative`") && e.contains("file:///"), "{e}");
        let e = err("redis://localhost");
        assert!(e.contains("file://") && e.contains("redis://"), "{e}");
        let e = err("/var/lock");
        assert!(e.contains("file:///ABSOLUTE/FOLDER"), "{e}");
        let e = err("file:///x?mode=0600");
        assert!(e.contains("unknown query parameter `mode`"), "{e}");
        let e = err("file://");
        assert!(e.contains("names no folder"), "{e}");
        let e = err("file://u:secret@/x");
        assert!(e.contains("user name") && !e.contains("secret"), "{e}");
        let e = err("file:///x#frag");
        assert!(e.contains("fragment"), "{e}");
    }

    #[test]
    fn dir_url_round_trips() {
        for dir in ["/tmp/a b", "/tmp/100%", "/tmp/q?x#y", "/tmp/锁"] {
            let url = dir_url(Path::new(dir)).unwrap();
            assert!(url.starts_with("file:///"), "{url}");
            let back = parse(&url).unwrap();
            assert_eq!(
                back.components().collect::<Vec<_>>(),
                Path::new(dir).components().collect::<Vec<_>>()
            );
        }
    }
}
