//! Exit codes of `locksmith`, and the error type that carries one.
//!
//! | code | meaning |
//! |---|---|
//! | the command's own | `run`/`elect`: the command exited by itself with this code |
//! | 128+N | the command was killed by signal N |
//! | 0 | `status`: the report was printed (whether the key is held or free); `torture`: no violation |
//! | 1 | `torture`: the checker found a violation, a client process failed, or no lock was granted |
//! | 64 | bad input: invalid key, URL, option, duration, and clap's usage errors (not clap's usual 2) |
//! | 69 | the backend is unavailable, or another library error |
//! | 75 | the lock was not obtained within the wait bound (`--wait`, `--no-wait`) |
//! | 76 | the lock was lost while the command ran; the command was stopped |
//! | 126 | the command was found but could not be executed |
//! | 127 | the command was not found |
//!
//! 64, 69 and 75 are the `sysexits.h` codes `EX_USAGE`, `EX_UNAVAILABLE` and `EX_TEMPFAIL`;
//! 126 and 127 follow the shell.

use std::fmt;

use locksmith::Error;

/// `torture` found a violation (or a client process failed).
pub const VIOLATION: u8 = 1;
/// Bad input: an invalid key, URL, option, duration, or a usage error.
pub const USAGE: u8 = 64;
/// The backend is unavailable, or another library error.
pub const UNAVAILABLE: u8 = 69;
/// The lock was not obtained within the wait bound.
pub const NOT_OBTAINED: u8 = 75;
/// The lock was lost while the command ran.
pub const LOST: u8 = 76;
/// The command was found but could not be executed.
pub const NOT_EXECUTABLE: u8 = 126;
/// The command was not found.
pub const NOT_FOUND: u8 = 127;

/// The exit-code table, for the end of `--help`.
pub const HELP: &str = "\
Exit codes:
  N        run/elect: the command's own exit code (128+N if it was killed by signal N)
  0        status: the report was printed, whether the key is held or free;
           torture: no violation
  1        torture: a violation, a failed client, or no lock granted
  64       bad input: invalid key, URL, option or duration, and usage errors
           (clap's usage errors exit 64 too, not 2)
  69       backend unavailable, or another library error
  75       the lock was not obtained within the wait bound (--wait, --no-wait)
  76       the lock was lost while the command ran; the command was stopped
  126      the command could not be executed
  127      the command was not found";

/// Why `locksmith` stops without a status of the command: a message and an exit code.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// What to print after `locksmith: `.
    pub message: String,
}

impl Failure {
    /// A failure with a code and a message.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The exit code for a library error.
pub(crate) fn code_of(err: &Error) -> u8 {
    match err {
        Error::InvalidKey { .. } | Error::InvalidUrl { .. } | Error::InvalidOption(_) => USAGE,
        Error::Timeout { .. } => NOT_OBTAINED,
        Error::Lost { .. } => LOST,
        _ => UNAVAILABLE,
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            // Driver messages may quote a URL; never let a password through. A source the
            // message already quotes is not repeated.
            let text = locksmith::mask_url(&s.to_string());
            if !message.contains(&text) {
                message.push_str(&format!(": {text}"));
            }
            source = s.source();
        }
        Failure::new(code_of(&err), message)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn library_errors_map_to_documented_codes() {
        assert_eq!(code_of(&Error::InvalidOption("x".into())), USAGE);
        let timeout = Error::Timeout {
            key: "k".into(),
            backend: "memory://t".into(),
            waited: Duration::from_millis(300),
            holder: None,
        };
        assert!(timeout.is_timeout());
        assert_eq!(code_of(&timeout), NOT_OBTAINED);
        let down = Error::backend("redis://u:***@h", Some("k"), "connection refused", None);
        assert_eq!(code_of(&down), UNAVAILABLE);
    }

    #[test]
    fn sources_are_shown_with_passwords_masked() {
        let source: locksmith::BoxError = "cannot reach redis://u:hunter2@h:6379".into();
        let err = Error::backend("redis://u:***@h", None, "connect failed", Some(source));
        let failure = Failure::from(err);
        assert_eq!(failure.code, UNAVAILABLE);
        assert!(failure.message.contains("connect failed"), "{failure}");
        assert!(
            failure.message.contains("redis://u:***@h:6379"),
            "{failure}"
        );
        assert!(!failure.message.contains("hunter2"), "{failure}");
    }
}
