//! `locksmith torture` and its hidden client: parse, then hand over to `locksmith-torture`.

use crate::args::{TortureArgs, TortureClientArgs};
use crate::exit::{self, Failure};

/// Runs a torture against `url` and prints the report; exit 1 on any violation.
pub(crate) async fn torture(url: Option<String>, args: TortureArgs) -> Result<u8, Failure> {
    let faults = locksmith_torture::fault::parse_list(&args.faults)
        .map_err(|e| Failure::new(exit::USAGE, format!("--faults: {e}")))?;
    let servers = match &args.servers {
        Some(kind) => Some(
            kind.parse::<locksmith_torture::network::Servers>()
                .map_err(|e| Failure::new(exit::USAGE, format!("--servers: {e}")))?,
        ),
        None => None,
    };
    if servers.is_some() && url.as_deref().is_some_and(|u| !u.is_empty()) {
        return Err(Failure::new(
            exit::USAGE,
            "--servers starts the backend's servers for the run: give it or --url, not both",
        ));
    }
    if servers.is_none()
        && let Some(f) = faults.iter().find(|f| f.needs_own_server())
    {
        return Err(Failure::new(
            exit::USAGE,
            format!("--faults: {f} kills and restarts a server the run started: add --servers"),
        ));
    }
    let url = match servers {
        Some(_) => String::new(),
        None => crate::url_or_default(url)?,
    };
    let exe = std::env::current_exe()
        .map_err(|e| Failure::new(exit::UNAVAILABLE, format!("cannot find my own binary: {e}")))?;
    let out = args
        .out
        .unwrap_or_else(locksmith_torture::orchestrator::default_out);
    let cfg = locksmith_torture::TortureConfig {
        url,
        servers,
        duration: args.duration,
        clients: args.clients,
        keys: args.keys,
        ttl: args.ttl,
        faults,
        out: out.clone(),
        client_command: (exe, vec!["torture-client".into()]),
        split_brain: args.split_brain,
        pause_past_ttl: args.pause_past_ttl,
        redlock_restart_empty: args.redlock_restart_empty,
    };
    let scenarios = [
        cfg.split_brain.is_some(),
        cfg.pause_past_ttl,
        cfg.redlock_restart_empty,
    ];
    if scenarios.iter().filter(|on| **on).count() > 1 {
        return Err(Failure::new(
            exit::USAGE,
            "--split-brain, --pause-past-ttl and --redlock-restart-empty are separate scenarios: \
             give one",
        ));
    }
    if cfg.redlock_restart_empty
        && cfg.servers != Some(locksmith_torture::network::Servers::Redlock)
    {
        return Err(Failure::new(
            exit::USAGE,
            "--redlock-restart-empty restarts Redlock nodes the run starts: add --servers redlock",
        ));
    }
    // A bad URL, or one other processes cannot share, is bad input; anything else that stops
    // the run is the environment's fault.
    if let Some(other) = &cfg.split_brain {
        locksmith::open(other)?;
    }
    if cfg.servers.is_none()
        && !locksmith::open(&cfg.url)?
            .backend()
            .capabilities()
            .cross_process
    {
        let locker = locksmith::open(&cfg.url)?;
        return Err(Failure::new(
            exit::USAGE,
            format!(
                "{} keeps its locks inside one process; torture runs its clients as separate \
                 processes, so it needs a backend they can share (file://DIR or a networked one)",
                locker.display_url()
            ),
        ));
    }
    if cfg.servers.is_none()
        && let Some(f) = cfg.faults.iter().find(|f| f.needs_proxy())
    {
        // Checked here so that a URL without one host:port is bad input (exit 64).
        locksmith_torture::network::check_proxyable(&cfg.url)
            .map_err(|e| Failure::new(exit::USAGE, format!("--faults {f}: {e}")))?;
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
        stall_every: args.stall_every,
    };
    locksmith_torture::client_main(cfg)
        .await
        .map_err(|e| Failure::new(exit::UNAVAILABLE, format!("torture client: {e}")))?;
    Ok(0)
}
