//! The fault proxy in front of a plain echo server: passthrough, delay, blackhole, reset, cut.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use locksmith_testkit::proxy::FaultProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// No step waits longer than this; a hang fails instead of blocking CI.
const LIMIT: Duration = Duration::from_secs(30);

/// An echo server counting the bytes it received.
async fn echo() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&received);
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            count.fetch_add(n, Ordering::SeqCst);
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, received)
}

async fn read_exact(s: &mut TcpStream, n: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(LIMIT, s.read_exact(&mut buf))
        .await
        .expect("read within the limit")?;
    Ok(buf)
}

#[tokio::test]
async fn bytes_pass_both_ways_and_a_half_close_is_passed_on() {
    let (target, _) = echo().await;
    let proxy = FaultProxy::start(target).await.unwrap();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    s.write_all(b"hello").await.unwrap();
    assert_eq!(read_exact(&mut s, 5).await.unwrap(), b"hello");
    assert_eq!(proxy.connections(), 1);
    s.shutdown().await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(LIMIT, s.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(rest.is_empty(), "clean EOF after the echo server saw ours");
}

#[tokio::test]
async fn delay_holds_every_chunk_back_each_way() {
    let (target, _) = echo().await;
    let proxy = FaultProxy::start(target).await.unwrap();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    proxy.set_delay(Duration::from_millis(200));
    let sent = Instant::now();
    s.write_all(b"x").await.unwrap();
    read_exact(&mut s, 1).await.unwrap();
    // A lower bound only: the sleeps guarantee it, however loaded the machine.
    assert!(sent.elapsed() >= Duration::from_millis(400));
    proxy.set_delay(Duration::ZERO);
    s.write_all(b"y").await.unwrap();
    assert_eq!(read_exact(&mut s, 1).await.unwrap(), b"y");
}

#[tokio::test]
async fn a_blackhole_keeps_the_socket_open_forwards_nothing_and_delivers_after_healing() {
    let (target, received) = echo().await;
    let proxy = FaultProxy::start(target).await.unwrap();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    s.write_all(b"a").await.unwrap();
    read_exact(&mut s, 1).await.unwrap();
    proxy.blackhole(true);
    s.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    let r = tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await;
    assert!(r.is_err(), "nothing comes back through a blackhole: {r:?}");
    assert_eq!(
        received.load(Ordering::SeqCst),
        1,
        "nothing reached the server"
    );
    proxy.blackhole(false);
    assert_eq!(read_exact(&mut s, 4).await.unwrap(), b"ping");
    assert_eq!(received.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn reset_all_sends_a_reset_to_open_connections_and_new_ones_still_work() {
    let (target, _) = echo().await;
    let proxy = FaultProxy::start(target).await.unwrap();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    s.write_all(b"a").await.unwrap();
    read_exact(&mut s, 1).await.unwrap();
    proxy.reset_all();
    let err = read_exact(&mut s, 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
    fresh.write_all(b"b").await.unwrap();
    assert_eq!(read_exact(&mut fresh, 1).await.unwrap(), b"b");
}

#[tokio::test]
async fn a_cut_delivers_the_request_and_resets_before_the_reply() {
    let (target, received) = echo().await;
    let proxy = FaultProxy::start(target).await.unwrap();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    proxy.cut_next_reply();
    s.write_all(b"req").await.unwrap();
    let err = read_exact(&mut s, 3).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert_eq!(
        received.load(Ordering::SeqCst),
        3,
        "the server got the request"
    );
    // The cut was used up: the next connection is served normally.
    let mut next = TcpStream::connect(proxy.addr()).await.unwrap();
    next.write_all(b"ok").await.unwrap();
    assert_eq!(read_exact(&mut next, 2).await.unwrap(), b"ok");
}
