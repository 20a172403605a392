//! The per-user default lock folder.

use std::ffi::OsString;
use std::path::PathBuf;

/// The default lock folder of this user: `$XDG_STATE_HOME/locksmith` when `XDG_STATE_HOME`
/// is an absolute path, else `$HOME/.local/state/locksmith`, else
/// `<temp folder>/locksmith-<uid>`. Only computes the path; [`crate::FileBackend::new`]
/// creates it.
pub fn default_state_dir() -> PathBuf {
    pick(std::env::var_os("XDG_STATE_HOME"), std::env::var_os("HOME"))
}

fn pick(xdg_state_home: Option<OsString>, home: Option<OsString>) -> PathBuf {
    let absolute = |v: Option<OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(state) = absolute(xdg_state_home) {
        return state.join("locksmith");
    }
    if let Some(home) = absolute(home) {
        return home.join(".local").join("state").join("locksmith");
    }
    std::env::temp_dir().join(format!("locksmith-{}", uid()))
}

#[cfg(unix)]
fn uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

#[cfg(not(unix))]
fn uid() -> u32 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_of_choice() {
        let some = |s: &str| Some(OsString::from(s));
        assert_eq!(pick(some("/s"), some("/h")), PathBuf::from("/s/locksmith"));
        assert_eq!(
            pick(some("relative"), some("/h")),
            PathBuf::from("/h/.local/state/locksmith")
        );
        assert_eq!(
            pick(some(""), some("/h")),
            PathBuf::from("/h/.local/state/locksmith")
        );
        let tmp = pick(None, some(""));
        assert!(tmp.starts_with(std::env::temp_dir()), "{}", tmp.display());
        assert!(
            tmp.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("locksmith-")
        );
        assert!(default_state_dir().is_absolute());
    }
}
