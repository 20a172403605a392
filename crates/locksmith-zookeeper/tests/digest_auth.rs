//! Digest authentication against a real ZooKeeper server: a chroot whose ACL grants
//! everything to one digest identity only. locksmith with that identity's `user:pass@` locks
//! under it; without credentials or with a wrong password it gets a clear error (not a hang,
//! not a panic) that never prints the password.

use std::sync::Arc;
use std::time::Duration;

use locksmith_core::{LockOptions, Locker};
use locksmith_testkit::errors::attempt_error;
use locksmith_testkit::servers::zookeeper::start_zookeeper;
use locksmith_zookeeper::ZooKeeperBackend;
use zookeeper_client as zk;

/// Generous bound for waits that should end quickly; only a hang exceeds it.
const PATIENCE: Duration = Duration::from_secs(30);
const USER: &str = "locker";
const PASSWORD: &str = "s3cret-Pw-4711";
const CHROOT: &str = "/secured";

fn locker(url: &str) -> Locker {
    Locker::new(Arc::new(ZooKeeperBackend::from_url(url).expect("url")))
}

fn opts() -> LockOptions {
    LockOptions::new().wait_for(PATIENCE)
}

/// Creates `CHROOT` with the ACL "everything for digest `USER:PASSWORD`, nothing for anyone
/// else", as that user.
async fn make_protected_chroot(addr: &str) {
    let client = zk::Client::connector()
        .with_auth("digest", format!("{USER}:{PASSWORD}").as_bytes())
        .connect(addr)
        .await
        .expect("connect as the digest user");
    let acl = zk::CreateMode::Persistent.with_acls(zk::Acls::creator_all());
    client
        .create(CHROOT, b"", &acl)
        .await
        .expect("create the chroot");
    let (acls, _) = client.get_acl(CHROOT).await.expect("read its ACL");
    assert_eq!(acls.len(), 1, "{acls:?}");
    assert_eq!(acls[0].scheme(), "digest", "{acls:?}");
    assert!(acls[0].id().starts_with(&format!("{USER}:")), "{acls:?}");
}

/// The error of a lock attempt through `url`, which must fail (within `PATIENCE`), without
/// the password in it.
async fn lock_error(url: &str, key: &str) -> String {
    attempt_error(&locker(url), key, &opts(), PATIENCE, PASSWORD).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_credentials_lock_under_a_protected_chroot() {
    let zk_server = start_zookeeper();
    make_protected_chroot(&zk_server.addr).await;
    let base = format!("{}{CHROOT}?connect_timeout=5", zk_server.addr);

    let good = locker(&format!("zookeeper://{USER}:{PASSWORD}@{base}"));
    tokio::time::timeout(PATIENCE, async {
        let g = good
            .acquire("jobs/nightly", &opts())
            .await
            .expect("acquire");
        let holder = good.holder("jobs/nightly").await.expect("holder");
        assert!(holder.is_some());
        // The lock node is really under the protected chroot.
        let admin = zk::Client::connector()
            .with_auth("digest", format!("{USER}:{PASSWORD}").as_bytes())
            .connect(&format!("{}{CHROOT}", zk_server.addr))
            .await
            .expect("connect as the digest user");
        let children = admin
            .list_children("/jobs/nightly")
            .await
            .expect("list the lock folder");
        assert_eq!(children.len(), 1, "{children:?}");
        // Its folder and node are as protected as the chroot: this identity only.
        for path in [
            "/jobs",
            "/jobs/nightly",
            &format!("/jobs/nightly/{}", children[0]),
        ] {
            let (acls, _) = admin.get_acl(path).await.expect("read the ACL");
            assert!(
                acls.len() == 1
                    && acls[0].scheme() == "digest"
                    && acls[0].id().starts_with(&format!("{USER}:")),
                "{path}: {acls:?}"
            );
        }
        g.release().await.expect("release");
        assert!(good.holder("jobs/nightly").await.expect("holder").is_none());
    })
    .await
    .expect("no hang");

    // A key whose folder exists (made above) and one whose folder must be made in the chroot.
    for key in ["jobs/nightly", "fresh"] {
        let e = lock_error(&format!("zookeeper://{base}"), key).await;
        assert!(
            e.contains("not authorized") && e.contains("USER:PASSWORD@"),
            "the error names the problem and the fix: {e}"
        );

        let e = lock_error(&format!("zookeeper://{USER}:not-the-password@{base}"), key).await;
        assert!(
            e.contains("not authorized") && e.contains("USER:PASSWORD@"),
            "the error names the problem and the fix: {e}"
        );
        assert!(!e.contains("not-the-password"), "password printed: {e}");
        assert!(!e.contains(PASSWORD), "password printed: {e}");
    }
}
