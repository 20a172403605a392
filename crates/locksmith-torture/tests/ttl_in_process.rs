//! The client workload on a TTL-lease backend (`memory://`, so clients are tasks of this
//! process rather than processes): grants carry lease deadlines, holds longer than the TTL
//! are seen renewed, and the checker finds nothing.

use std::time::Duration;

use locksmith_torture::checker::{CheckOptions, check};
use locksmith_torture::history::{HistoryWriter, Kind, merge, read_history};
use locksmith_torture::resource::ResourceServer;
use locksmith_torture::{ClientConfig, client_main};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_a_ttl_backend_record_deadlines_and_renewals_and_pass_the_checker() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("memory://torture-ttl-{}", std::process::id());
    let _keep_table = locksmith::open(&url).unwrap();
    let resource_log = dir.path().join("resource.jsonl");
    let server = ResourceServer::start(
        &dir.path().join("r.sock"),
        HistoryWriter::create(&resource_log, 0).unwrap(),
    )
    .unwrap();
    let ttl = Duration::from_millis(300);
    let mut clients = Vec::new();
    for id in 1..=3 {
        let cfg = ClientConfig {
            url: url.clone(),
            id,
            keys: vec!["k".into()],
            ttl,
            resource: server.path().to_owned(),
            history: dir.path().join(format!("client-{id}.jsonl")),
            run_for: Duration::from_millis(2500),
            stall_every: None,
        };
        clients.push(tokio::spawn(client_main(cfg)));
    }
    for c in clients {
        tokio::time::timeout(Duration::from_secs(60), c)
            .await
            .expect("clients finish")
            .unwrap()
            .unwrap();
    }
    drop(server);
    let mut histories = vec![read_history(&resource_log).unwrap()];
    for id in 1..=3 {
        histories.push(read_history(&dir.path().join(format!("client-{id}.jsonl"))).unwrap());
    }
    let events = merge(histories);
    let findings = check(&events, CheckOptions::default());
    assert!(findings.acquisitions > 0);
    assert_eq!(
        findings.violations().count(),
        0,
        "{:#?}",
        findings.violations().collect::<Vec<_>>()
    );
    for e in &events {
        if let Kind::AcquireOk { lease_end, .. } = &e.kind {
            assert!(
                lease_end.is_some_and(|l| l > e.t),
                "a TTL grant has a deadline: {e:?}"
            );
        }
    }
    // Every hold that outlived the TTL and was released normally was renewed meanwhile, and
    // the renewal was recorded.
    for h in &findings.holds {
        if h.end.saturating_sub(h.start) > ttl.as_nanos() as u64 && h.ended_by == "release" {
            let renewed = events.iter().any(|e| {
                e.client == h.client
                    && matches!(&e.kind, Kind::Renew { token, .. } if *token == h.token)
            });
            assert!(
                renewed,
                "hold {h:?} outlived its TTL without a recorded renewal"
            );
        }
    }
    let renewals = events
        .iter()
        .filter(|e| matches!(e.kind, Kind::Renew { .. }))
        .count();
    eprintln!(
        "{} holds, {renewals} renewals recorded",
        findings.holds.len()
    );
    assert!(
        findings.holds.iter().all(|h| h.lease_end.is_some()),
        "TTL holds carry deadlines"
    );
}
