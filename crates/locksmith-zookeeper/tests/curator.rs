//! Interop with the real Apache Curator (Debian's `libcurator-recipes-java` 5.4 on the
//! packaged ZooKeeper 3.8): a Curator `InterProcessMutex` and a locksmith lock on the same
//! path exclude each other, both ways. The Java side is `tests/curator/CuratorLock.java`, run
//! by the JDK's source launcher.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use locksmith_core::{LockOptions, Locker};
use locksmith_testkit::servers::require_binary;
use locksmith_testkit::servers::zookeeper::start_zookeeper;
use locksmith_zookeeper::ZooKeeperBackend;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use zookeeper_client as zk;

/// Generous bound for waits that should end quickly (a JVM start included).
const PATIENCE: Duration = Duration::from_secs(90);

const JARS: &[&str] = &[
    "curator-recipes",
    "curator-framework",
    "curator-client",
    "zookeeper",
    "zookeeper-jute",
    "guava",
    "slf4j-api",
    "slf4j-nop",
];

/// A `CuratorLock.java` process: one `InterProcessMutex` acquire, hold, release.
struct Curator {
    child: Child,
    stdin: ChildStdin,
    out: Lines<BufReader<ChildStdout>>,
}

impl Curator {
    fn start(connect: &str, path: &str) -> Self {
        let java = require_binary("java", "default-jdk-headless");
        let mut classpath = Vec::new();
        for jar in JARS {
            let p = format!("/usr/share/java/{jar}.jar");
            assert!(
                Path::new(&p).exists(),
                "{p} is missing: install the Debian package `libcurator-recipes-java` \
                 (scripts/test.sh does this) — interop tests never skip"
            );
            classpath.push(p);
        }
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/curator/CuratorLock.java");
        let mut child = Command::new(java)
            // -XX:-UsePerfData: no /tmp/hsperfdata file left by a killed process.
            .args([
                "-Xmx128m",
                "-XX:+UseSerialGC",
                "-XX:-UsePerfData",
                "-cp",
                &classpath.join(":"),
            ])
            .arg(source)
            .args([connect, path])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start java");
        let stdin = child.stdin.take().expect("stdin");
        let out = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Self { child, stdin, out }
    }

    /// The next line Curator prints, which must start with `word`.
    async fn expect(&mut self, word: &str) -> String {
        let line = tokio::time::timeout(PATIENCE, self.out.next_line())
            .await
            .unwrap_or_else(|_| {
                panic!("Curator printed nothing for {PATIENCE:?}; waited for {word}")
            })
            .expect("read Curator's output")
            .unwrap_or_else(|| panic!("Curator exited before printing {word}"));
        assert!(
            line.starts_with(word),
            "expected {word}, Curator said {line}"
        );
        line
    }

    /// Tells Curator to release, and waits until it has and has exited.
    async fn release(mut self) {
        self.stdin.write_all(b"release\n").await.expect("write");
        self.stdin.flush().await.expect("flush");
        self.expect("RELEASED").await;
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("Curator exits")
            .expect("wait");
        assert!(status.success(), "{status}");
    }
}

fn locker(url: &str) -> Locker {
    Locker::new(Arc::new(ZooKeeperBackend::from_url(url).expect("url")))
}

/// Waits until the lock folder `dir` has `n` lock nodes.
async fn wait_for_nodes(client: &zk::Client, dir: &str, n: usize) {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let kids = client.list_children(dir).await.unwrap_or_default();
            if kids.iter().filter(|k| k.contains("-lock-")).count() == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{dir} never had {n} lock nodes"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curator_holds_and_locksmith_waits() {
    let server = start_zookeeper();
    let a = locker(&format!("{}?session_timeout=10", server.url()));
    let opts = LockOptions::new().wait_for(PATIENCE);

    let mut curator = Curator::start(&server.addr, "/interop/curator-first");
    curator.expect("WAITING").await;
    let held = curator.expect("HELD").await;
    assert!(held.contains("/interop/curator-first/_c_"), "{held}");
    assert!(
        a.try_acquire("interop/curator-first", &opts)
            .await
            .unwrap()
            .is_none(),
        "locksmith got the lock Curator holds"
    );
    assert!(
        a.holder("interop/curator-first").await.unwrap().is_some(),
        "Curator's node is seen as the holder"
    );
    let waiter = tokio::spawn({
        let (a, opts) = (a.clone(), opts.clone());
        async move { a.acquire("interop/curator-first", &opts).await }
    });
    let raw = zk::Client::connect(&server.addr).await.expect("connect");
    wait_for_nodes(&raw, "/interop/curator-first", 2).await;
    assert!(!waiter.is_finished(), "granted while Curator holds it");
    curator.release().await;
    let g = tokio::time::timeout(PATIENCE, waiter)
        .await
        .expect("granted after Curator let go")
        .unwrap()
        .unwrap();
    assert!(g.release().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locksmith_holds_and_curator_waits() {
    let server = start_zookeeper();
    let a = locker(&format!("{}?session_timeout=10", server.url()));
    let opts = LockOptions::new().wait_for(PATIENCE);

    let g = a.acquire("interop/locksmith-first", &opts).await.unwrap();
    let mut curator = Curator::start(&server.addr, "/interop/locksmith-first");
    curator.expect("WAITING").await;
    // Curator's node is in line behind ours, and Curator does not claim the lock.
    let raw = zk::Client::connect(&server.addr).await.expect("connect");
    wait_for_nodes(&raw, "/interop/locksmith-first", 2).await;
    let early = tokio::time::timeout(Duration::from_millis(500), curator.out.next_line()).await;
    assert!(
        early.is_err(),
        "Curator said {early:?} while locksmith holds the lock"
    );
    assert!(g.release().await.unwrap());
    let held = curator.expect("HELD").await;
    assert!(held.contains("/interop/locksmith-first/_c_"), "{held}");
    assert!(
        a.try_acquire("interop/locksmith-first", &opts)
            .await
            .unwrap()
            .is_none(),
        "locksmith got the lock Curator holds"
    );
    curator.release().await;
    let g2 = a
        .try_acquire("interop/locksmith-first", &opts)
        .await
        .unwrap()
        .expect("free once Curator released");
    assert!(g2.release().await.unwrap());
}
