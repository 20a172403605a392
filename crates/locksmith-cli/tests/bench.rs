//! `locksmith bench`: JSON with every workload for memory and file, the table, JSON and chart
//! against every networked backend's private servers (each with its native floor), and bad URLs
//! refused with exit 64. Timings are never asserted.

mod common;

use common::{bare, file_url, memory_url};
use locksmith_testkit::servers;

const WORKLOADS: &[&str] = &["floor", "uncontended", "throughput", "contended", "renewal"];

#[tokio::test]
async fn memory_and_file_give_json_with_every_workload() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let memory = memory_url("bench-json");
    let file = file_url(&dir.path().join("locks"));
    let mut cmd = bare();
    cmd.args(["bench", "--url", &memory, "--url", &file])
        .args([
            "--duration",
            "1s",
            "--clients",
            "3",
            "--leases",
            "5",
            "--format",
            "json",
        ])
        .arg("--out")
        .arg(&out);
    let o = common::output(&mut cmd).await;
    o.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("stdout is JSON");
    let backends = v["backends"].as_array().expect("backends");
    assert_eq!(backends.len(), 2, "{v:#}");
    for (b, scheme) in backends.iter().zip(["memory", "file"]) {
        assert_eq!(b["scheme"], scheme, "{b:#}");
        assert_eq!(b["errors"].as_array().map(Vec::len), Some(0), "{b:#}");
        for w in WORKLOADS {
            assert!(b[w].is_object(), "{scheme} lacks {w}: {b:#}");
        }
        assert!(b["uncontended"]["count"].as_u64().unwrap() > 0, "{b:#}");
        assert_eq!(b["contended"]["per_client"].as_array().unwrap().len(), 3);
        let jain = b["contended"]["jain"].as_f64().unwrap();
        assert!((0.0..=1.0 + 1e-9).contains(&jain), "{b:#}");
    }
    let svg = std::fs::read_to_string(out.join("bench.svg")).expect("bench.svg");
    assert!(svg.contains("<svg") && svg.contains("memory"), "{svg}");
    let md = std::fs::read_to_string(out.join("bench.md")).expect("bench.md");
    assert!(
        md.contains("| **Method**") && md.contains("File (flock)"),
        "{md}"
    );
    let json = std::fs::read_to_string(out.join("bench.json")).expect("bench.json");
    serde_json::from_str::<serde_json::Value>(&json).expect("bench.json is JSON");
}

#[tokio::test]
async fn every_networked_backend_gives_the_table_with_its_native_floor() {
    let redis = servers::redis::shared().url();
    let redlock = format!(
        "redlock://{}",
        servers::redis::shared_five()
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port()))
            .collect::<Vec<_>>()
            .join(",")
    );
    let pg = servers::postgres::postgres().url.clone();
    let my = servers::mariadb::mariadb().url.clone();
    let etcd = servers::etcd::shared_etcd_url();
    let zk = servers::zookeeper::shared_zookeeper_url();
    let urls = [&redis, &redlock, &pg, &my, &etcd, &zk];
    let out = tempfile::tempdir().unwrap();
    let mut cmd = bare();
    cmd.arg("bench");
    for u in urls {
        cmd.args(["--url", u]);
    }
    cmd.args([
        "--duration",
        "300ms",
        "--clients",
        "2",
        "--leases",
        "3",
        "--out",
    ])
    .arg(out.path());
    let o = common::output(&mut cmd).await;
    o.expect_code(0);
    let rows: Vec<&str> = o.stdout.lines().filter(|l| l.starts_with("| **")).collect();
    assert_eq!(
        rows.len(),
        1 + urls.len(),
        "header and a row each: {}",
        o.stdout
    );
    for (row, method) in rows[1..].iter().zip([
        "Redis (SET NX)",
        "Redlock",
        "PostgreSQL",
        "MySQL/MariaDB",
        "etcd",
        "ZooKeeper",
    ]) {
        assert!(row.contains(method), "{method} expected in {row}");
    }
    assert!(
        !o.stdout.contains(" — "),
        "a workload is missing: {}",
        o.stdout
    );
    let json = std::fs::read_to_string(out.path().join("bench.json")).expect("bench.json");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    for b in v["backends"].as_array().expect("backends") {
        let method = b["floor"]["method"].as_str().expect("floor method");
        assert!(
            !method.contains("no native pair"),
            "{} fell back to the trait pair: {method}",
            b["scheme"]
        );
    }
    let svg = std::fs::read_to_string(out.path().join("bench.svg")).expect("bench.svg");
    assert!(
        svg.contains("zookeeper") && svg.contains("redlock"),
        "{svg}"
    );
}

#[tokio::test]
async fn bad_urls_exit_64_before_anything_runs() {
    let mut cmd = bare();
    cmd.args([
        "bench",
        "--url",
        "memory://ok",
        "--url",
        "gopher://x",
        "--duration",
        "1s",
    ]);
    let o = common::output(&mut cmd).await;
    o.expect_code(64);
    assert!(o.stderr.contains("gopher"), "{o:#?}");
    assert!(o.stdout.is_empty(), "{o:#?}");

    let mut cmd = bare();
    cmd.args(["bench", "--duration", "1s"]);
    common::output(&mut cmd).await.expect_code(64);
}
