//! `locksmith elect`: wait to become leader, run a command as leader, resign when it exits.

use locksmith::{LockKey, Locker, show_key};

use crate::args::ElectArgs;
use crate::exit::Failure;
use crate::run::{finish, hold_and_run, lock_options};
use crate::waiting;

/// Campaigns, runs the command as leader, resigns; returns the exit code.
///
/// # Errors
/// As `run`: 75 when leadership is not won within `--wait`, 64/69 for library errors,
/// 126/127 when the command cannot be started.
pub(crate) async fn elect(locker: &Locker, key: LockKey, args: ElectArgs) -> Result<u8, Failure> {
    let election = locker.election(&key, lock_options(&args.hold))?;
    let what = format!("leadership of {}", show_key(key.as_str()));
    let leadership = waiting::announce_while(locker, &key, &what, election.campaign()).await?;
    let what = format!("{what} on {}", locker.display_url());
    let outcome = hold_and_run(
        &args.hold,
        &key,
        leadership.fencing_token(),
        leadership.lost(),
        &what,
    )
    .await;
    finish(outcome, leadership.resign(), &what).await
}
