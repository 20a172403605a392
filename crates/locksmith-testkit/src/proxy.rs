//! A TCP fault proxy for tests and torture runs: it listens on a free loopback port, forwards
//! every connection to a target, and can on command
//!
//! - **delay** every chunk, each way ([`FaultProxy::set_delay`]);
//! - **blackhole** ([`FaultProxy::blackhole`]): keep the sockets open and forward nothing
//!   (what arrives meanwhile is held back and delivered once healed, as TCP would after a
//!   partition heals);
//! - **reset** every open connection, both sides, with a TCP RST ([`FaultProxy::reset_all`]);
//! - **retarget** new connections to another server ([`FaultProxy::retarget`]);
//! - **cut** the next request's connection after the request reached the target and before
//!   its reply reaches the client ([`FaultProxy::cut_next_reply`]): the server acted, the
//!   client never hears.
//!
//! `tc netem` needs privileges these machines do not give; the proxy is portable. It sees
//! bytes, not messages: a "request" is the next chunk read from a client, a "reply" the next
//! chunk read from the target on that connection.
//!
//! ```no_run
//! # async fn demo(target: std::net::SocketAddr) -> std::io::Result<()> {
//! let proxy = locksmith_testkit::proxy::FaultProxy::start(target).await?;
//! let url = format!("redis://{}", proxy.addr()); // clients connect through the proxy
//! proxy.blackhole(true);   // partition
//! proxy.blackhole(false);  // heal
//! proxy.reset_all();       // every connection gets a RST
//! # let _ = url; Ok(()) }
//! ```

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Clone, Copy, Debug, Default)]
struct Mode {
    delay: Duration,
    blackhole: bool,
    cut_armed: bool,
}

#[derive(Debug)]
struct Shared {
    /// Where new connections go.
    target: Mutex<SocketAddr>,
    mode: watch::Sender<Mode>,
    /// One "kill" switch per open connection.
    conns: Mutex<Vec<watch::Sender<bool>>>,
}

/// A running fault proxy; dropping it stops accepting and resets every open connection.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `target` (connected to once per
    /// accepted connection; a client whose target connection fails is reset).
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start(target: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            target: Mutex::new(target),
            mode: watch::Sender::new(Mode::default()),
            conns: Mutex::new(Vec::new()),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(Self {
            addr,
            shared,
            accept,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends connections accepted from now on to `target` instead (open ones stay where they
    /// are: [`reset_all`](Self::reset_all) them to move every client).
    pub fn retarget(&self, target: SocketAddr) {
        *self.shared.target.lock().unwrap_or_else(|p| p.into_inner()) = target;
    }

    /// Delays every chunk, each way, by `d` (zero: no delay).
    pub fn set_delay(&self, d: Duration) {
        self.shared.mode.send_modify(|m| m.delay = d);
    }

    /// Starts (`true`) or heals (`false`) a blackhole: sockets stay open, nothing is forwarded.
    pub fn blackhole(&self, on: bool) {
        self.shared.mode.send_modify(|m| m.blackhole = on);
    }

    /// Resets every open connection on both sides (RST); later connections are served.
    pub fn reset_all(&self) {
        let mut conns = self.shared.conns.lock().unwrap_or_else(|p| p.into_inner());
        for kill in conns.drain(..) {
            let _ = kill.send(true);
        }
    }

    /// Arms a cut: the next chunk a client sends is forwarded, and that connection is reset
    /// (both sides) when the target's reply arrives, instead of delivering it.
    pub fn cut_next_reply(&self) {
        self.shared.mode.send_modify(|m| m.cut_armed = true);
    }

    /// How many connections are open.
    pub fn connections(&self) -> usize {
        let mut conns = self.shared.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns.retain(|k| k.receiver_count() > 0);
        conns.len()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.reset_all();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let _ = client.set_nodelay(true);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let target = *shared.target.lock().unwrap_or_else(|p| p.into_inner());
            let server = match TcpStream::connect(target).await {
                Ok(s) => s,
                Err(_) => {
                    let _ = client.set_zero_linger();
                    return;
                }
            };
            let _ = server.set_nodelay(true);
            let (kill, _) = watch::channel(false);
            {
                let mut conns = shared.conns.lock().unwrap_or_else(|p| p.into_inner());
                conns.retain(|k| k.receiver_count() > 0);
                conns.push(kill.clone());
            }
            let kill = Arc::new(kill);
            let cut_pending = Arc::new(AtomicBool::new(false));
            let (c_rd, c_wr) = client.into_split();
            let (s_rd, s_wr) = server.into_split();
            let up = tokio::spawn(pump(
                Dir::Up,
                c_rd,
                s_wr,
                Arc::clone(&shared),
                Arc::clone(&kill),
                Arc::clone(&cut_pending),
            ));
            let down = pump(Dir::Down, s_rd, c_wr, shared, kill, cut_pending);
            down.await;
            let _ = up.await;
        });
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// Client to target.
    Up,
    /// Target to client.
    Down,
}

/// Resolves once the connection is killed (or its switch is gone).
async fn killed_now(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|k| *k).await;
}

/// Resolves once no blackhole is on (the borrow is released before returning).
async fn open_now(rx: &mut watch::Receiver<Mode>) {
    let _ = rx.wait_for(|m| !m.blackhole).await;
}

/// Makes the close of both sockets of a connection send a RST (and no FIN first: a write
/// half dropped normally would shut its socket down before the close).
fn reset(rd: OwnedReadHalf, wr: OwnedWriteHalf) {
    let _ = rd.as_ref().set_zero_linger();
    let _ = wr.as_ref().set_zero_linger();
    wr.forget();
    drop(rd);
}

async fn pump(
    dir: Dir,
    mut rd: OwnedReadHalf,
    mut wr: OwnedWriteHalf,
    shared: Arc<Shared>,
    kill: Arc<watch::Sender<bool>>,
    cut_pending: Arc<AtomicBool>,
) {
    let mut killed = kill.subscribe();
    let mut mode = shared.mode.subscribe();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) => {
                    // Half-close: pass the FIN on and let the other direction finish.
                    let _ = wr.shutdown().await;
                    return;
                }
                Ok(n) => n,
                Err(_) => break,
            },
            () = killed_now(&mut killed) => break,
        };
        tokio::select! {
            () = open_now(&mut mode) => {}
            () = killed_now(&mut killed) => break,
        }
        let delay = mode.borrow().delay;
        if !delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                () = killed_now(&mut killed) => break,
            }
        }
        match dir {
            Dir::Up => {
                if shared
                    .mode
                    .send_if_modified(|m| std::mem::take(&mut m.cut_armed))
                {
                    cut_pending.store(true, Ordering::SeqCst);
                }
            }
            Dir::Down if cut_pending.load(Ordering::SeqCst) => break,
            Dir::Down => {}
        }
        if wr.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    // Killed, cut, or a socket failed: reset the whole connection.
    let _ = kill.send(true);
    reset(rd, wr);
}
