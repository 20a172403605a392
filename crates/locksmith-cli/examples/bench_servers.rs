//! Starts private test servers (Redis, a 3-master Redis Cluster, five Redis for Redlock,
//! PostgreSQL, MariaDB, etcd, ZooKeeper) on free loopback ports, prints a `locksmith bench` command line for them, and keeps them up
//! until Ctrl-C (they die with this process). Used to take the README's table:
//!
//! ```sh
//! cargo run --example bench_servers
//! ```

use locksmith_testkit::servers;

fn main() {
    let redis = servers::redis::shared().url();
    let five: Vec<String> = servers::redis::shared_five()
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port()))
        .collect();
    let cluster = servers::redis_cluster::shared().url("redis+cluster");
    let pg = servers::postgres::postgres().url.clone();
    let my = servers::mariadb::mariadb().url.clone();
    let etcd = servers::etcd::shared_etcd_url();
    let zk = servers::zookeeper::shared_zookeeper_url();
    println!(
        "locksmith bench --url memory://bench --url file:///tmp/locksmith-bench \
         --url {redis} --url {redis}?fair=true --url {cluster} --url redlock://{} --url {pg} --url {my} --url {etcd} \
         --url {zk}",
        five.join(",")
    );
    eprintln!("servers are up; Ctrl-C stops them");
    loop {
        std::thread::park();
    }
}
