//! The conformance suite on `memory://`.

use std::sync::Arc;

use locksmith_core::{Backend, MemoryBackend};
use locksmith_testkit::{Target, conformance_main};

fn main() -> std::process::ExitCode {
    conformance_main(|| async {
        let name = format!("conformance-{}", std::process::id());
        // Keep one handle alive so every client shares the same table.
        let anchor = MemoryBackend::named(&name);
        let caps = anchor.capabilities();
        let url = anchor.display_url();
        Target::new("memory", url, caps, move || {
            let backend = MemoryBackend::named(&name);
            let _keep = &anchor;
            async move { Ok(Arc::new(backend) as Arc<dyn Backend>) }
        })
    })
}
