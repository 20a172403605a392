//! Prompt loss detection: a watch on the session's TCP socket that reports a hang-up (the
//! server or the network closed or reset the connection) the moment the kernel sees it.
//!
//! mysql_async reads its socket only while a statement runs, so a held lock whose connection
//! dies would go unnoticed until the next health check, while the server has already freed
//! the lock and granted it to someone else. The crate does not hand out its socket, but it
//! sets `tcp_keepalive` on it right after the TCP connect. So each connect gets a keepalive
//! idle time that marks it (7201 s plus a rotating slot, beyond Linux's default of 7200 s);
//! after the handshake, the one socket of this process carrying that mark is the session's.
//! It is duplicated, its idle time set back to 7200 s (the mark is free again), and the copy
//! goes into an epoll instance of its own that asks for a hang-up or an error and nothing
//! else; that instance is registered with tokio's reactor, which reports the hang-up with the
//! next epoll wake-up. (Registering the socket itself would make every reply an event the
//! reactor handles and a wake-up of the lease's watcher: measured, 4 to 7 % of the contended
//! acquisition rate.)
//!
//! Where the mark cannot be used (a `tcp_keepalive` given in the URL, a Unix socket, another
//! socket of the process carrying the same mark, not Linux), there is no watch and the
//! health check finds the loss instead.

use std::time::Duration;

/// The keepalive idle time (seconds) sockets carry once identified: Linux's default.
#[cfg(target_os = "linux")]
const SETTLED_SECS: u32 = 7200;

/// A marked connect in flight: the options to connect with and the mark to look for.
pub(crate) struct Mark {
    secs: Option<u32>,
}

impl Mark {
    /// Marks `opts` unless the URL chose its own keepalive (the options are then unchanged).
    pub(crate) fn new(opts: &mysql_async::Opts) -> (mysql_async::Opts, Mark) {
        if !cfg!(target_os = "linux") || opts.tcp_keepalive().is_some() || opts.socket().is_some() {
            return (opts.clone(), Mark { secs: None });
        }
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let secs = 7201 + NEXT.fetch_add(1, Ordering::Relaxed) % 3599;
        let marked = mysql_async::OptsBuilder::from_opts(opts.clone())
            .tcp_keepalive(Some(Duration::from_secs(u64::from(secs))));
        (marked.into(), Mark { secs: Some(secs) })
    }

    /// After the connect: the watch on the marked socket, if exactly one carries the mark.
    pub(crate) fn watch(self) -> Option<HangUp> {
        let secs = self.secs?;
        let w = imp::find(secs);
        if w.is_none() {
            tracing::debug!(
                mark = secs,
                "no unique socket for the new MySQL connection; its loss is found by the \
                 health check"
            );
        }
        w
    }
}

pub(crate) use imp::HangUp;

#[cfg(target_os = "linux")]
mod imp {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::os::unix::ffi::OsStrExt;

    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    use super::SETTLED_SECS;

    /// A duplicate of a session's socket in an epoll instance of its own that asks for
    /// `EPOLLRDHUP` only (errors and hang-ups are always reported): replies do not make the
    /// instance ready, so the reactor, which watches the instance, hears from it only when the
    /// connection ends. Dropped with the session, so the connection still closes with it.
    pub(crate) struct HangUp {
        ep: AsyncFd<OwnedFd>,
        _socket: OwnedFd,
    }

    impl HangUp {
        fn new(socket: OwnedFd) -> io::Result<Self> {
            // SAFETY: epoll_create1 takes no pointer; on success the new descriptor is ours.
            let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            if ep < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `ep` is a fresh descriptor owned by nobody else.
            let ep = unsafe { OwnedFd::from_raw_fd(ep) };
            let mut ev = libc::epoll_event {
                events: libc::EPOLLRDHUP as u32,
                u64: 0,
            };
            // SAFETY: both descriptors are open; `ev` is valid for reads.
            let rc = unsafe {
                libc::epoll_ctl(
                    ep.as_raw_fd(),
                    libc::EPOLL_CTL_ADD,
                    socket.as_raw_fd(),
                    &raw mut ev,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `ep` is an open descriptor the OwnedFd owns for the AsyncFd's lifetime.
            let ep = unsafe { AsyncFd::register_with_interest(ep, Interest::READABLE) }?;
            Ok(Self {
                ep,
                _socket: socket,
            })
        }

        /// What the instance reports now, without waiting: `Some(why)` once the connection
        /// ended or failed.
        fn reason(&self) -> Option<String> {
            let mut ev = libc::epoll_event { events: 0, u64: 0 };
            let n = loop {
                // SAFETY: `ev` is valid for writes of one event; a zero timeout does not block.
                let n =
                    unsafe { libc::epoll_wait(self.ep.get_ref().as_raw_fd(), &raw mut ev, 1, 0) };
                if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                    break n;
                }
            };
            match n {
                0 => None,
                n if n < 0 => Some(format!(
                    "watching the connection's socket failed: {}",
                    io::Error::last_os_error()
                )),
                _ if ev.events & libc::EPOLLERR as u32 != 0 => {
                    Some("the connection failed (seen on its socket)".to_owned())
                }
                _ => Some("the connection was closed or reset (seen on its socket)".to_owned()),
            }
        }

        /// Resolves when the peer closed or reset the connection, or the socket failed.
        ///
        /// Cancel-safe; it only watches.
        pub(crate) async fn wait(&self) -> String {
            loop {
                let mut guard = match self.ep.readable().await {
                    Ok(guard) => guard,
                    Err(e) => return format!("watching the connection's socket failed: {e}"),
                };
                if let Some(why) = self.reason() {
                    return why;
                }
                guard.clear_ready();
            }
        }

        /// True when a hang-up has been seen already (without waiting; no system call unless
        /// the reactor saw the instance ready).
        pub(crate) fn seen(&self) -> bool {
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            match self.ep.poll_read_ready(&mut cx) {
                std::task::Poll::Ready(Ok(_)) => self.reason().is_some(),
                std::task::Poll::Ready(Err(_)) => true,
                std::task::Poll::Pending => false,
            }
        }
    }

    /// The socket's keepalive idle time in seconds; `None` for anything but a TCP socket.
    fn keepidle(fd: RawFd) -> Option<u32> {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `v` and `len` are valid for writes of the sizes given; a bad or closed fd
        // only makes the call fail.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_KEEPIDLE,
                (&raw mut v).cast(),
                &raw mut len,
            )
        };
        (rc == 0).then(|| u32::try_from(v).ok()).flatten()
    }

    fn set_keepidle(fd: RawFd, secs: u32) {
        let v = secs as libc::c_int;
        // SAFETY: `v` is valid for reads of the size given.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_KEEPIDLE,
                (&raw const v).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            tracing::debug!(error = %io::Error::last_os_error(), "could not settle the keepalive mark");
        }
    }

    /// A close-on-exec duplicate of `fd`.
    fn dup(fd: RawFd) -> Option<OwnedFd> {
        // SAFETY: F_DUPFD_CLOEXEC takes no pointer; on success the new descriptor is ours.
        let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        // SAFETY: `new` is a fresh descriptor owned by nobody else.
        (new >= 0).then(|| unsafe { OwnedFd::from_raw_fd(new) })
    }

    pub(super) fn find(secs: u32) -> Option<HangUp> {
        let mut found = None;
        for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<RawFd>().ok())
            else {
                continue;
            };
            let Ok(target) = std::fs::read_link(entry.path()) else {
                continue;
            };
            if !target.as_os_str().as_bytes().starts_with(b"socket:[") {
                continue;
            }
            if keepidle(fd) == Some(secs) {
                if found.is_some() {
                    return None;
                }
                found = Some(fd);
            }
        }
        let copy = dup(found?)?;
        // The number could have been closed and reused since the scan: check the copy.
        if keepidle(copy.as_raw_fd()) != Some(secs) {
            return None;
        }
        set_keepidle(copy.as_raw_fd(), SETTLED_SECS);
        match HangUp::new(copy) {
            Ok(watch) => Some(watch),
            Err(e) => {
                tracing::debug!(error = %e, "could not watch a MySQL connection's socket");
                None
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    /// No socket watch on this platform.
    pub(crate) enum HangUp {}

    impl HangUp {
        pub(crate) async fn wait(&self) -> String {
            match *self {}
        }

        pub(crate) fn seen(&self) -> bool {
            match *self {}
        }
    }

    pub(super) fn find(_secs: u32) -> Option<HangUp> {
        None
    }
}
