//! The single entry point: lists every case by name, marks the ones the backend cannot support
//! as ignored (skipped, with the reason on stderr), and runs the rest, each on its own runtime.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::process::ExitCode;
use std::time::Duration;

use libtest_mimic::{Arguments, Failed, Trial};

use crate::cases::{CASES, Ctx};
use crate::target::Target;

/// The longest a single case may run before it is failed as hung.
const CASE_TIMEOUT: Duration = Duration::from_secs(300);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Runs the conformance suite against the target `make` describes. `make` runs once per
/// process, also when tests are only listed, so it must be cheap: locate the server (the test
/// tooling started it), do not connect yet. Call it from `main` of a `harness = false` test.
pub fn conformance_main<F, Fut>(make: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Target>,
{
    let args = Arguments::from_args();
    let target = runtime().block_on(make());
    let caps = target.capabilities;
    let mut trials = Vec::new();
    for case in CASES {
        match case.needs.missing_from(&caps) {
            Some(reason) => {
                if !args.list {
                    eprintln!(
                        "conformance[{}]: skipping {}: {reason}",
                        target.name, case.name
                    );
                }
                // Ignored means skipped; forced to run, it fails rather than pass.
                let why = format!("{} cannot run on {}: {reason}", case.name, target.name);
                trials.push(
                    Trial::test(case.name, move || Err(Failed::from(why.clone())))
                        .with_ignored_flag(true),
                );
            }
            None => {
                let target = target.clone();
                let run = case.run;
                let name = case.name;
                trials.push(Trial::test(name, move || {
                    let rt = runtime();
                    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        rt.block_on(async {
                            let cx = Ctx::new(target, name);
                            tokio::time::timeout(CASE_TIMEOUT, run(cx)).await
                        })
                    }));
                    rt.shutdown_timeout(Duration::from_secs(5));
                    match outcome {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(_)) => Err(format!("{name} hung for {CASE_TIMEOUT:?}").into()),
                        Err(panic) => Err(panic_message(&panic).into()),
                    }
                }));
            }
        }
    }
    libtest_mimic::run(&args, trials).exit_code()
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else {
        "the case panicked".to_owned()
    }
}
