//! `locksmith torture` and its hidden client: parse, then hand over to `locksmith-torture`.

use crate::args::{TortureArgs, TortureClientArgs};
use crate::exit::{self, Failure};

/// Runs a torture against `url` and prints the report; exit 1 on any violation.
pub(crate) async fn torture(url: String, args: TortureArgs) -> Result<u8, Failure> {
    let faults = locksmith_torture::fault::parse_list(&args.faults)
        .map_err(|e| Failure::new(exit::USAGE, format!("--faults: {e}")))?;
    let exe = std::env::current_exe()
        .map_err(|e| Failure::new(exit::UNAVAILABLE, format!("cannot find my own binary: {e}")))?;
    let out = args
        .out
        .unwrap_or_else(locksmith_torture::orchestrator::default_out);
    let cfg = locksmith_torture::TortureConfig {
        url,
        duration: args.duration,
        clients: args.clients,
        keys: args.keys,
        ttl: args.ttl,
        faults,
        out: out.clone(),
        client_command: (exe, vec!["torture-client".into()]),
        split_brain: args.split_brain,
    };
    // A bad URL, or one other processes cannot share, is bad input; anything else that stops
    // the run is the environment's fault.
    let locker = locksmith::open(&cfg.url)?;
    if let Some(other) = &cfg.split_brain {
        locksmith::open(other)?;
    }
    if !locker.backend().capabilities().cross_process {
        return Err(Failure::new(
            exit::USAGE,
            format!(
                "{} keeps its locks inside one process; torture runs its clients as separate \
                 processes, so it needs a backend they can share (file://DIR or a networked one)",
                locker.display_url()
            ),
        ));
    }
    let outcome = locksmith_torture::run(&cfg)
        .await
        .map_err(|e| Failure::new(exit::UNAVAILABLE, e))?;
    print!("{}", locksmith_torture::report::render(&outcome));
    eprintln!(
        "locksmith: torture histories and report in {}",
        out.display()
    );
    Ok(if outcome.passed() { 0 } else { exit::VIOLATION })
}

/// One client process of a torture run.
pub(crate) async fn client(url: String, args: TortureClientArgs) -> Result<u8, Failure> {
    let cfg = locksmith_torture::ClientConfig {
        url,
        id: args.id,
        keys: args.keys.split(',').map(str::to_owned).collect(),
        ttl: args.ttl,
        resource: args.resource,
        history: args.history,
        run_for: args.run_for,
    };
    locksmith_torture::client_main(cfg)
        .await
        .map_err(|e| Failure::new(exit::UNAVAILABLE, format!("torture client: {e}")))?;
    Ok(0)
}
