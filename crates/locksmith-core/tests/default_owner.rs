//! The default owner label (`host:pid`): what it says, and that a forked child says its own id.

use locksmith_core::{LockOptions, default_owner};

fn expected() -> String {
    format!(
        "{}:{}",
        gethostname::gethostname().to_string_lossy(),
        std::process::id()
    )
}

/// One test in this file: the child of the fork must not find the label's lock held by a
/// test running beside it (as under `cargo test`, which runs tests as threads of one process).
#[test]
fn the_default_owner_names_this_host_and_process_and_a_forked_child_its_own() {
    assert_eq!(LockOptions::new().owner_label(), expected());
    // Made before the fork, so that the child would find it if forks were not told apart.
    let parent = default_owner();
    assert_eq!(parent, expected());
    // SAFETY: the child only builds two strings (glibc's malloc is usable after a fork) and
    // ends with _exit; no other thread of this process uses the label meanwhile.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = default_owner() == expected() && LockOptions::new().owner_label() == expected();
        // SAFETY: ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for the child made above.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(libc::WIFEXITED(status), "the child did not exit: {status}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "the forked child's default owner was not `host:<its own pid>`"
    );
    assert_eq!(default_owner(), parent, "the parent's label changed");
}
