//! The shared resource the lock protects: a tiny server on a Unix socket, run by the
//! orchestrator, holding per key two registers that clients increment by read-modify-write:
//!
//! - the **fenced** register accepts a write only if its token is at least the highest it has
//!   seen for the key (the fencing check a real resource should make);
//! - the **unfenced** register accepts every write (to show what fencing prevents).
//!
//! Every write is judged under one lock and logged, in judgement order, as a
//! [`Kind::Resource`] event.
//!
//! Protocol: one JSON object per line each way. `{"op":"read","key":K,"fenced":B}` →
//! `{"value":N}`; `{"op":"write","key":K,"fenced":B,"token":T,"read":N,"writer":C}` →
//! `{"accepted":B}` (an accepted write stores `read + 1`).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

use crate::history::{HistoryWriter, Kind};

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    Read {
        key: String,
        fenced: bool,
    },
    Write {
        key: String,
        fenced: bool,
        token: u64,
        read: u64,
        writer: u32,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accepted: Option<bool>,
}

#[derive(Default)]
struct Register {
    value: u64,
    highest: u64,
}

#[derive(Default)]
struct Registers {
    fenced: HashMap<String, Register>,
    unfenced: HashMap<String, Register>,
}

/// The running resource server; stops when dropped.
#[derive(Debug)]
pub struct ResourceServer {
    path: PathBuf,
    task: JoinHandle<()>,
}

impl ResourceServer {
    /// Listens on the Unix socket `path` and logs every judged write to `log`.
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub fn start(path: &Path, log: HistoryWriter) -> io::Result<Self> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        let state = Arc::new(Mutex::new(Registers::default()));
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(serve(conn, Arc::clone(&state), log.clone()));
            }
        });
        Ok(Self {
            path: path.to_owned(),
            task,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ResourceServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn serve(conn: UnixStream, state: Arc<Mutex<Registers>>, log: HistoryWriter) {
    let (rd, mut wr) = conn.into_split();
    let mut lines = BufReader::new(rd).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(req) => judge(req, &state, &log),
            Err(err) => {
                eprintln!("locksmith torture: bad resource request {line:?}: {err}");
                return;
            }
        };
        let mut out = serde_json::to_string(&reply).expect("replies serialize");
        out.push('\n');
        if wr.write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn judge(req: Request, state: &Mutex<Registers>, log: &HistoryWriter) -> Reply {
    let mut regs = state.lock().unwrap_or_else(|p| p.into_inner());
    match req {
        Request::Read { key, fenced } => {
            let map = if fenced {
                &mut regs.fenced
            } else {
                &mut regs.unfenced
            };
            Reply {
                value: Some(map.get(&key).map_or(0, |r| r.value)),
                accepted: None,
            }
        }
        Request::Write {
            key,
            fenced,
            token,
            read,
            writer,
        } => {
            let map = if fenced {
                &mut regs.fenced
            } else {
                &mut regs.unfenced
            };
            let reg = map.entry(key.clone()).or_default();
            let (prev, highest) = (reg.value, reg.highest);
            let accepted = !fenced || token >= reg.highest;
            if accepted {
                reg.value = read + 1;
                reg.highest = reg.highest.max(token);
            }
            // Logged while the registers are locked, so the log order is the judgement order.
            log.log(Kind::Resource {
                key,
                fenced,
                writer,
                token,
                read,
                prev,
                highest,
                accepted,
            });
            Reply {
                value: None,
                accepted: Some(accepted),
            }
        }
    }
}

/// A client's connection to the resource server.
#[derive(Debug)]
pub struct ResourceClient {
    lines: tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    wr: tokio::net::unix::OwnedWriteHalf,
    writer: u32,
}

impl ResourceClient {
    /// Connects as client `writer`.
    ///
    /// # Errors
    /// When the socket cannot be reached.
    pub async fn connect(path: &Path, writer: u32) -> io::Result<Self> {
        let (rd, wr) = UnixStream::connect(path).await?.into_split();
        Ok(Self {
            lines: BufReader::new(rd).lines(),
            wr,
            writer,
        })
    }

    async fn call(&mut self, req: &Request) -> io::Result<Reply> {
        let mut line = serde_json::to_string(req).expect("requests serialize");
        line.push('\n');
        self.wr.write_all(line.as_bytes()).await?;
        let reply = self.lines.next_line().await?.ok_or_else(|| {
            io::Error::new(io::ErrorKind::UnexpectedEof, "resource server went away")
        })?;
        serde_json::from_str(&reply).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Reads a register.
    ///
    /// # Errors
    /// When the server cannot be reached.
    pub async fn read(&mut self, key: &str, fenced: bool) -> io::Result<u64> {
        let reply = self
            .call(&Request::Read {
                key: key.to_owned(),
                fenced,
            })
            .await?;
        Ok(reply.value.unwrap_or(0))
    }

    /// Writes `read + 1` with `token`; `Ok(true)` if accepted.
    ///
    /// # Errors
    /// When the server cannot be reached.
    pub async fn write(
        &mut self,
        key: &str,
        fenced: bool,
        token: u64,
        read: u64,
    ) -> io::Result<bool> {
        let reply = self
            .call(&Request::Write {
                key: key.to_owned(),
                fenced,
                token,
                read,
                writer: self.writer,
            })
            .await?;
        Ok(reply.accepted.unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::read_history;

    #[tokio::test]
    async fn the_fenced_register_rejects_older_tokens_and_the_unfenced_one_accepts_all() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("resource.jsonl");
        let server = ResourceServer::start(
            &dir.path().join("r.sock"),
            HistoryWriter::create(&log, 0).unwrap(),
        )
        .unwrap();
        let mut a = ResourceClient::connect(server.path(), 1).await.unwrap();
        let mut b = ResourceClient::connect(server.path(), 2).await.unwrap();
        assert!(a.write("k", true, 5, 0).await.unwrap());
        assert!(
            !b.write("k", true, 4, 0).await.unwrap(),
            "older token rejected"
        );
        assert!(
            b.write("k", true, 5, 1).await.unwrap(),
            "equal token accepted"
        );
        assert_eq!(a.read("k", true).await.unwrap(), 2);
        assert!(b.write("k", false, 1, 0).await.unwrap());
        assert!(
            a.write("k", false, 0, 0).await.unwrap(),
            "unfenced takes anything"
        );
        assert_eq!(a.read("k", false).await.unwrap(), 1);
        drop(server);
        let events = read_history(&log).unwrap();
        assert_eq!(events.len(), 5);
        assert!(matches!(
            events[1].kind,
            Kind::Resource {
                accepted: false,
                token: 4,
                highest: 5,
                ..
            }
        ));
    }
}
