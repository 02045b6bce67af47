//! Commit latency and throughput of a 3-node cluster on loopback with fsync on (issue 3).
//!
//! Run with `cargo build --release -p switchyard-cli && cargo bench -p switchyard-tests --bench
//! commit_latency`. It starts three real `switchyard serve` processes, writes annotations
//! through the leader one at a time (latency) and from several concurrent writers (throughput),
//! and prints a table. `BENCH_WRITES` sets the number of sequential writes (default 1000).

use std::time::{Duration, Instant};

use switchyard_tests::{ClusterOptions, TestCluster};

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn main() {
    let writes: usize = std::env::var("BENCH_WRITES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut cluster = TestCluster::new(ClusterOptions { nodes: 3, snapshot_every: 5000, with_service: false });
        cluster.start_all();
        let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
        let client = cluster.client(leader, Some("test-operator-token"));
        for n in 0..20 {
            client.annotate(&format!("warm-up {n}")).await.expect("warm-up write");
        }

        let mut latencies = Vec::with_capacity(writes);
        for n in 0..writes {
            let started = Instant::now();
            client.annotate(&format!("sequential {n}")).await.expect("sequential write");
            latencies.push(started.elapsed());
        }
        latencies.sort();

        let writers = 16;
        let per_writer = writes / writers;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for writer in 0..writers {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0..per_writer {
                    client.annotate(&format!("concurrent {writer}-{n}")).await.expect("concurrent write");
                }
            }));
        }
        for task in tasks {
            task.await.expect("writer");
        }
        let elapsed = started.elapsed();
        let concurrent_rate = (writers * per_writer) as f64 / elapsed.as_secs_f64();
        let sequential_rate = writes as f64 / latencies.iter().sum::<Duration>().as_secs_f64();

        println!("commit latency, 3 nodes on loopback, fsync on (redb Durability::Immediate), via the REST API");
        println!("| measure | value |");
        println!("| --- | --- |");
        println!("| sequential writes | {writes} |");
        println!("| p50 | {:.2} ms |", percentile(&latencies, 0.50).as_secs_f64() * 1000.0);
        println!("| p90 | {:.2} ms |", percentile(&latencies, 0.90).as_secs_f64() * 1000.0);
        println!("| p99 | {:.2} ms |", percentile(&latencies, 0.99).as_secs_f64() * 1000.0);
        println!("| max | {:.2} ms |", latencies.last().expect("writes").as_secs_f64() * 1000.0);
        println!("| sequential throughput | {sequential_rate:.0} writes/s |");
        println!("| throughput, {writers} concurrent writers | {concurrent_rate:.0} writes/s |");
    });
}
