//! Helpers shared by the etcd backend's own tests.

#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

use locksmith_testkit::servers::etcd::EtcdCluster;

/// Generous bound for waits that should end quickly; only a hang exceeds it.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Runs `etcdctl ARGS` against the cluster (bounded timeouts) and returns its stdout.
pub fn etcdctl(cluster: &EtcdCluster, args: &[&str]) -> String {
    let out = Command::new("etcdctl")
        .args([
            "--endpoints",
            &cluster.endpoints(),
            "--dial-timeout=2s",
            "--command-timeout=5s",
        ])
        .args(args)
        .output()
        .expect("run etcdctl");
    assert!(
        out.status.success(),
        "etcdctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}
