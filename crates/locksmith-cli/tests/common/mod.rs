//! Helpers shared by the CLI tests: start `locksmith`, collect its output with a bound.
#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// No test waits longer than this for a process; a hang fails instead of blocking CI.
pub const LIMIT: Duration = Duration::from_secs(60);

/// `locksmith --url URL`, with a clean environment for locksmith's own variables.
pub fn locksmith(url: &str) -> Command {
    let mut cmd = bare();
    cmd.arg("--url").arg(url);
    cmd
}

/// `locksmith` without `--url`.
pub fn bare() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_locksmith"));
    cmd.env_remove("LOCKSMITH_URL")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// `file://DIR`.
pub fn file_url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

/// A `memory://` URL unique to this test.
pub fn memory_url(test: &str) -> String {
    format!("memory://{test}-{}", std::process::id())
}

/// What a finished `locksmith` left.
#[derive(Debug)]
pub struct Out {
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Asserts the exit code, showing the output otherwise.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "unexpected exit code: {self:#?}");
        assert!(
            !self.stderr.contains("panicked"),
            "locksmith panicked: {self:#?}"
        );
        self
    }
}

/// Waits for a started `locksmith` and collects its output.
pub async fn finish(child: Child) -> Out {
    let out = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .expect("locksmith did not finish in time")
        .expect("wait for locksmith");
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `cmd` to the end.
pub async fn output(cmd: &mut Command) -> Out {
    finish(cmd.spawn().expect("start locksmith")).await
}

/// Reads one line of a started child's stdout (the child keeps running).
pub async fn first_line(child: &mut Child) -> String {
    let stdout = child.stdout.as_mut().expect("piped stdout");
    let mut line = String::new();
    tokio::time::timeout(LIMIT, BufReader::new(stdout).read_line(&mut line))
        .await
        .expect("no line in time")
        .expect("read stdout");
    line.trim().to_owned()
}
