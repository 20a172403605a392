//! The history: one JSON object per line, appended by every client process (its own file), the
//! orchestrator (faults) and the resource server (every write it judged).

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::clock::now_ns;

/// One event: when (`CLOCK_MONOTONIC` ns), who (client id; 0 for the orchestrator and the
/// resource server) and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// `CLOCK_MONOTONIC` in ns, comparable across the processes of one host.
    pub t: u64,
    /// The client process id given by the orchestrator (not the OS pid); 0 for the orchestrator.
    pub client: u32,
    /// What happened.
    #[serde(flatten)]
    pub kind: Kind,
}

/// What happened. `lease_end` is the guard's local lease deadline as a monotonic timestamp
/// (`t + Guard::lease_left()`), `None` for session-bound locks, which hold until released or
/// until their session ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Kind {
    /// A client process started (`pid` is the OS pid).
    ClientStart {
        /// The OS pid.
        pid: u32,
    },
    /// A client process finished its run and exits.
    ClientExit,
    /// An acquire was sent.
    AcquireInvoke {
        /// The lock key.
        key: String,
    },
    /// The acquire was granted.
    AcquireOk {
        /// The lock key.
        key: String,
        /// The fencing token of the grant.
        token: u64,
        /// The lease deadline, if TTL-bound.
        lease_end: Option<u64>,
    },
    /// The acquire definitely did not grant the lock (the wait bound passed).
    AcquireFail {
        /// The lock key.
        key: String,
    },
    /// The acquire failed with an error: it may or may not have been granted.
    AcquireUnknown {
        /// The lock key.
        key: String,
        /// The error.
        error: String,
    },
    /// The lease deadline was seen to move forward (a background renewal was confirmed).
    Renew {
        /// The lock key.
        key: String,
        /// The fencing token of the grant.
        token: u64,
        /// The new deadline.
        lease_end: Option<u64>,
    },
    /// The guard reported the lock lost.
    Lost {
        /// The lock key.
        key: String,
        /// The fencing token of the grant.
        token: u64,
        /// The reason given.
        reason: String,
    },
    /// The client stopped acting as holder and is about to send its release: written before
    /// the release, so that a client killed while releasing is not taken for a holder up to
    /// its death (the server may already have passed the lock on).
    ReleaseInvoke {
        /// The lock key.
        key: String,
        /// The fencing token of the grant.
        token: u64,
        /// The lease deadline seen when releasing.
        lease_end: Option<u64>,
    },
    /// The client released (`t` is when the release was sent; written once it answered).
    Release {
        /// The lock key.
        key: String,
        /// The fencing token of the grant.
        token: u64,
        /// The lease deadline seen when releasing.
        lease_end: Option<u64>,
        /// `Some(true)` still held, `Some(false)` already gone, `None` the release failed.
        held: Option<bool>,
    },
    /// The client's view of one read-modify-write on a resource (`t` is when it was sent).
    Write {
        /// The lock key.
        key: String,
        /// The fencing token sent.
        token: u64,
        /// The fenced or the unfenced register.
        fenced: bool,
        /// Whether the resource accepted it.
        accepted: bool,
        /// The lease deadline seen just before writing.
        lease_end: Option<u64>,
    },
    /// The resource server's judgement of one write, in the order it judged them.
    Resource {
        /// The register's key (the lock key).
        key: String,
        /// The fenced or the unfenced register.
        fenced: bool,
        /// The writing client.
        writer: u32,
        /// The token the write carried.
        token: u64,
        /// The value the writer had read (it writes `read + 1`).
        read: u64,
        /// The register's value just before this write.
        prev: u64,
        /// The highest token the register had seen before this write.
        highest: u64,
        /// Whether it was accepted.
        accepted: bool,
    },
    /// The orchestrator injected a fault (or ended one, for faults with a duration).
    Fault {
        /// The fault's name (`pause`, `kill`, `stop` for the end-of-run kill of a straggler).
        fault: String,
        /// `start` or `end`.
        phase: Phase,
        /// The client it hit.
        victim: Option<u32>,
        /// The key the victim held.
        key: Option<String>,
        /// The token the victim held.
        token: Option<u64>,
    },
}

/// The phase of a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Injected.
    Start,
    /// Healed.
    End,
}

/// Appends events to a JSONL file, one `write` per line, so that a line is complete on disk
/// even if the process is SIGKILLed right after. Cheap to clone.
#[derive(Clone, Debug)]
pub struct HistoryWriter {
    client: u32,
    file: Arc<Mutex<File>>,
}

impl HistoryWriter {
    /// Creates (or appends to) `path`; events are stamped with `client`.
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub fn create(path: &Path, client: u32) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            client,
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// The client id events are stamped with.
    pub fn client(&self) -> u32 {
        self.client
    }

    /// Records `kind` now.
    pub fn log(&self, kind: Kind) {
        self.log_at(now_ns(), kind);
    }

    /// Records `kind` with timestamp `t`. A failed write is reported on stderr, not fatal.
    pub fn log_at(&self, t: u64, kind: Kind) {
        let event = Event {
            t,
            client: self.client,
            kind,
        };
        let mut line = serde_json::to_string(&event).expect("events serialize");
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(err) = file.write_all(line.as_bytes()) {
            eprintln!("locksmith torture: cannot write the history: {err}");
        }
    }
}

/// Reads a JSONL history. A last line cut short by a SIGKILL is ignored; any other bad line
/// is an error naming the file and line.
///
/// # Errors
/// When the file cannot be read or holds a malformed line.
pub fn read_history(path: &Path) -> io::Result<Vec<Event>> {
    let reader = BufReader::new(File::open(path)?);
    let lines: Vec<String> = reader.lines().collect::<io::Result<_>>()?;
    let mut out = Vec::with_capacity(lines.len());
    let last = lines.len().saturating_sub(1);
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(e) => out.push(e),
            Err(_) if i == last => {}
            Err(err) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}:{}: {err}", path.display(), i + 1),
                ));
            }
        }
    }
    Ok(out)
}

/// Merges histories into one, ordered by time (ties keep their input order).
pub fn merge(histories: impl IntoIterator<Item = Vec<Event>>) -> Vec<Event> {
    let mut all: Vec<Event> = histories.into_iter().flatten().collect();
    all.sort_by_key(|e| e.t);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_jsonl_and_a_torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let w = HistoryWriter::create(&path, 3).unwrap();
        w.log_at(
            5,
            Kind::AcquireOk {
                key: "k".into(),
                token: 7,
                lease_end: Some(9),
            },
        );
        w.log_at(6, Kind::ClientExit);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"t\":7,\"cli")
            .unwrap();
        let events = read_history(&path).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[0].kind,
            Kind::AcquireOk {
                key: "k".into(),
                token: 7,
                lease_end: Some(9)
            }
        );
        assert_eq!(events[1].client, 3);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(r#"{"t":5,"client":3,"ev":"acquire_ok","key":"k""#));
    }
}
