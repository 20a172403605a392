//! `locksmith bench`: runs the workloads of `locksmith-bench` against every `--url`, one backend
//! after the other, shows progress on stderr, and prints what was measured — also after Ctrl-C.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use locksmith_bench::{Config, OpenFn, ProgressFn, Report, Stop, bench_backend, markdown};

use crate::args::{BenchArgs, BenchFormat};
use crate::exit::{self, Failure};

/// Exit code after Ctrl-C (128 + SIGINT), once what was measured is printed.
const INTERRUPTED: u8 = 130;

pub(crate) async fn bench(urls: &[String], args: &BenchArgs) -> Result<u8, Failure> {
    if urls.is_empty() {
        return Err(Failure::new(
            exit::USAGE,
            "bench needs at least one --url (it can be given several times)",
        ));
    }
    if args.duration < Duration::from_millis(100) {
        return Err(Failure::new(
            exit::USAGE,
            "--duration must be at least 100ms",
        ));
    }
    // Every URL is checked before anything runs, so a typo in the last one costs no time.
    for url in urls {
        locksmith::backend_from_url(url)?;
    }
    let cfg = Config {
        duration: args.duration,
        clients: usize::from(args.clients),
        renew_leases: args.leases as usize,
        ..Config::default()
    };
    let stop = Arc::new(Stop::new());
    // Registered here, before any workload runs, so that an early Ctrl-C is not missed.
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| Failure::new(exit::UNAVAILABLE, format!("cannot watch Ctrl-C: {e}")))?;
    let on_ctrl_c = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            if sigint.recv().await.is_some() {
                stop.stop();
            }
        })
    };
    let progress = progress_line();
    let mut report = Report {
        duration_secs: args.duration.as_secs_f64(),
        clients: cfg.clients,
        renew_leases: cfg.renew_leases,
        backends: Vec::new(),
        interrupted: false,
    };
    for url in urls {
        if stop.is_stopped() {
            break;
        }
        let owned = url.clone();
        let open: OpenFn = Arc::new(move || locksmith::backend_from_url(&owned));
        let label = locksmith::mask_url(url);
        report
            .backends
            .push(bench_backend(&label, open, &cfg, &stop, Arc::clone(&progress)).await);
    }
    on_ctrl_c.abort();
    report.interrupted = stop.is_stopped();
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[K");
    }
    if report.interrupted {
        eprintln!("locksmith: interrupted; showing what was measured");
    }

    let table = markdown(&report);
    let json = serde_json::to_string_pretty(&report)
        .map_err(|e| Failure::new(exit::UNAVAILABLE, format!("cannot write JSON: {e}")))?;
    if let Some(dir) = &args.out {
        write_out(dir, &report, &table, &json)?;
    }
    let mut stdout = std::io::stdout().lock();
    let _ = match args.format {
        BenchFormat::Md => stdout.write_all(table.as_bytes()),
        BenchFormat::Json => writeln!(stdout, "{json}"),
    };
    let failed = report.backends.iter().any(|b| !b.errors.is_empty());
    Ok(if report.interrupted {
        INTERRUPTED
    } else if failed {
        exit::UNAVAILABLE
    } else {
        0
    })
}

fn write_out(
    dir: &std::path::Path,
    report: &Report,
    table: &str,
    json: &str,
) -> Result<(), Failure> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        Failure::new(
            exit::UNAVAILABLE,
            format!("cannot write {what} in {}: {e}", dir.display()),
        )
    };
    std::fs::create_dir_all(dir).map_err(|e| fail("the folder", &e))?;
    std::fs::write(dir.join("bench.md"), table).map_err(|e| fail("bench.md", &e))?;
    std::fs::write(dir.join("bench.json"), json).map_err(|e| fail("bench.json", &e))?;
    locksmith_bench::write_svg(report, &dir.join("bench.svg"))
        .map_err(|e| fail("bench.svg", &e))?;
    Ok(())
}

/// On a terminal one line rewritten in place; otherwise one line per workload.
fn progress_line() -> ProgressFn {
    let tty = std::io::stderr().is_terminal();
    let last = Mutex::new(String::new());
    Arc::new(move |backend: &str, workload: &str, left: Duration| {
        let what = format!("bench: {backend} · {workload}");
        if tty {
            eprint!("\r\x1b[K{what} · {:.1}s left", left.as_secs_f64());
        } else {
            let mut last = last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *last != what {
                eprintln!("{what} · {:.1}s", left.as_secs_f64());
                *last = what;
            }
        }
    })
}
