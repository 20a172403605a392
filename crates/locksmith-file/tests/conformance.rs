//! The locksmith conformance suite against the file backend, on a temporary folder that
//! lives as long as this test process (each case may run in its own process) and is removed
//! when the suite ends.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use locksmith_core::Backend;
use locksmith_file::FileBackend;

static DIR: OnceLock<PathBuf> = OnceLock::new();

fn main() -> std::process::ExitCode {
    let code = locksmith_testkit::conformance_main(|| async {
        let dir = tempfile::Builder::new()
            .prefix("locksmith-file-conformance-")
            .tempdir()
            .expect("create a temporary lock folder")
            .keep();
        let dir = DIR.get_or_init(|| dir);
        let url = locksmith_file::dir_url(dir).expect("a file:// URL for the temporary folder");
        locksmith_testkit::Target::new(
            "file",
            url.clone(),
            locksmith_file::capabilities(),
            move || {
                let url = url.clone();
                async move { Ok(Arc::new(FileBackend::from_url(&url)?) as Arc<dyn Backend>) }
            },
        )
    });
    if let Some(dir) = DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
    code
}
