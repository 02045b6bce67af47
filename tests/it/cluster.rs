//! Multi-process tests of the Raft-replicated controller (issue 3): real `switchyard serve`
//! processes on loopback ports, killed with SIGKILL and restarted from their data directories.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::seq::{IndexedRandom as _, SliceRandom as _};
use rand::{Rng as _, SeedableRng as _};
use switchyard_api::{AuditPage, Client, ErrorCode};
use switchyard_tests::{ClusterOptions, TestCluster, wait_until};

const ELECTION: Duration = Duration::from_secs(30);

/// Every audit entry of a node, page by page.
async fn audit_entries(client: &Client) -> AuditPage {
    let mut from = 0;
    let mut all = client.audit(0, 0, false).await.expect("audit head");
    all.entries.clear();
    loop {
        let page = client.audit(from, 1000, false).await.expect("audit page");
        let Some(last) = page.entries.last() else {
            break;
        };
        from = last.index + 1;
        all.entries.extend(page.entries);
    }
    all
}

/// How many times each annotation text appears in a node's audit chain.
async fn annotation_counts(client: &Client) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for entry in audit_entries(client).await.entries {
        if let Some(text) = entry.summary.strip_prefix("annotate: ") {
            *counts.entry(text.to_owned()).or_default() += 1;
        }
    }
    counts
}

/// Waits until every running node reports the same audit head at the same applied index.
async fn wait_converged(cluster: &TestCluster, nodes: &[u64]) -> String {
    let clients: Vec<Client> = nodes.iter().map(|id| cluster.admin(*id)).collect();
    wait_until(
        "every node to reach the same audit head",
        Duration::from_secs(60),
        || {
            let clients = clients.clone();
            async move {
                let mut heads = Vec::new();
                for client in &clients {
                    let status = client.status(false).await.ok()?;
                    heads.push((status.audit_head, status.last_applied_index));
                }
                heads
                    .windows(2)
                    .all(|pair| pair[0] == pair[1])
                    .then(|| heads[0].0.clone())
            }
        },
    )
    .await
}

/// Writes `count` annotations through random running nodes; returns the acknowledged texts.
async fn write_through_random_nodes(
    cluster: &TestCluster,
    nodes: &[u64],
    prefix: &str,
    count: usize,
    rng: &mut rand::rngs::StdRng,
) -> Vec<String> {
    let mut acknowledged = Vec::new();
    for n in 0..count {
        let id = *nodes.choose(rng).expect("a running node");
        let text = format!("{prefix}-{n}");
        // A write that fails is not retried under the same text, so a write that committed
        // without its acknowledgement can never appear twice.
        if cluster
            .client(id, Some("test-operator-token"))
            .annotate(&text)
            .await
            .is_ok()
        {
            acknowledged.push(text);
        }
    }
    acknowledged
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_survive_kill_9_of_the_leader_without_losing_acknowledged_writes() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut cluster = TestCluster::new(ClusterOptions::default());
    let mut order = cluster.node_ids();
    order.shuffle(&mut rng);
    for id in &order {
        cluster.start(*id);
    }
    let leader = cluster.wait_for_leader(ELECTION).await;
    let all = cluster.node_ids();

    let mut acknowledged =
        write_through_random_nodes(&cluster, &all, "before", 100, &mut rng).await;
    assert_eq!(
        acknowledged.len(),
        100,
        "with every node up, every write is acknowledged"
    );

    cluster.kill(leader);
    let survivors: Vec<u64> = all.iter().copied().filter(|id| *id != leader).collect();
    let new_leader = cluster.wait_for_leader(ELECTION).await;
    assert_ne!(new_leader, leader, "a killed node cannot stay leader");
    acknowledged
        .extend(write_through_random_nodes(&cluster, &survivors, "after", 100, &mut rng).await);
    assert!(
        acknowledged.len() >= 190,
        "writes continue under the new leader: {} acknowledged",
        acknowledged.len()
    );

    cluster.start(leader);
    let head = wait_converged(&cluster, &all).await;
    for id in all {
        let counts = annotation_counts(&cluster.admin(id)).await;
        for text in &acknowledged {
            assert_eq!(
                counts.get(text),
                Some(&1),
                "node {id}: acknowledged write {text} must appear exactly once"
            );
        }
        assert!(
            counts.values().all(|count| *count == 1),
            "node {id}: no write is duplicated"
        );
        let page = cluster.admin(id).audit(0, 1, true).await.expect("verify");
        assert_eq!(page.head, head);
        assert!(
            page.verification.expect("verification").valid,
            "node {id}: chain verifies"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_work_with_two_down_and_refuse_writes_without_quorum() {
    let mut cluster = TestCluster::new(ClusterOptions {
        nodes: 5,
        ..ClusterOptions::default()
    });
    cluster.start_all();
    let leader = cluster.wait_for_leader(ELECTION).await;
    let others: Vec<u64> = cluster
        .node_ids()
        .into_iter()
        .filter(|id| *id != leader)
        .collect();

    // Two nodes down at once, one of them the leader: three remain, a majority.
    cluster.kill(leader);
    cluster.kill(others[0]);
    let new_leader = cluster.wait_for_leader(ELECTION).await;
    let operator = cluster.client(others[1], Some("test-operator-token"));
    operator
        .annotate("two down")
        .await
        .expect("three of five is a quorum");

    // A third down: two of five cannot commit, and say so instead of hanging.
    let third = if new_leader == others[1] {
        others[2]
    } else {
        new_leader
    };
    cluster.kill(third);
    let asked: Vec<u64> = others[1..]
        .iter()
        .copied()
        .filter(|id| *id != third)
        .collect();
    for id in &asked {
        // Right after the kill a node may still name the dead leader and fail to reach it; once
        // its election timeout passes it knows there is no leader. Both are 503s; neither hangs.
        let client = cluster.client(*id, Some("test-operator-token"));
        let message = wait_until(&format!("node {id} to report no quorum"), ELECTION, || {
            let client = client.clone();
            async move {
                let error = client
                    .annotate("three down")
                    .await
                    .expect_err("no quorum, no commit");
                let api = error
                    .api_error()
                    .unwrap_or_else(|| panic!("expected an API error, got {error}"));
                assert!(
                    matches!(api.code, ErrorCode::NoQuorum | ErrorCode::LeaderUnreachable),
                    "node {id}: {api:?}"
                );
                assert_eq!(api.code.http_status(), 503);
                (api.code == ErrorCode::NoQuorum).then(|| api.message.clone())
            }
        })
        .await;
        assert!(message.contains("no quorum"), "{message}");
    }

    // One back: a majority again, and writes work.
    cluster.start(third);
    cluster.wait_for_leader(ELECTION).await;
    wait_until("writes to work again", ELECTION, || {
        let operator = operator.clone();
        async move { operator.annotate("quorum back").await.ok() }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_kept_down_past_several_snapshots_rejoins_by_snapshot_install() {
    let mut cluster = TestCluster::new(ClusterOptions {
        nodes: 3,
        snapshot_every: 20,
        with_service: false,
    });
    cluster.start_all();
    let leader = cluster.wait_for_leader(ELECTION).await;
    let down = cluster
        .node_ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    cluster.kill(down);
    let operator = cluster.client(leader, Some("test-operator-token"));
    for n in 0..120 {
        operator
            .annotate(&format!("while down {n}"))
            .await
            .expect("two of three is a quorum");
    }
    // Snapshots are built and the log purged in the background after the writes: wait for it.
    let leader_client = cluster.admin(leader);
    let purged = wait_until(
        "the leader to purge its log after snapshots",
        ELECTION,
        || {
            let leader_client = leader_client.clone();
            async move {
                leader_client
                    .status(false)
                    .await
                    .ok()?
                    .purged_index
                    .filter(|purged| *purged > 40)
            }
        },
    )
    .await;

    cluster.start(down);
    let head = wait_converged(&cluster, &cluster.node_ids()).await;
    let rejoined = cluster
        .admin(down)
        .status(false)
        .await
        .expect("rejoined status");
    assert_eq!(rejoined.audit_head, head);
    let snapshot = rejoined
        .snapshot_index
        .expect("the rejoined node holds a snapshot");
    assert!(
        snapshot >= purged,
        "installed snapshot {snapshot} covers the purged log {purged}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_during_heavy_writes_always_restarts_with_a_valid_chain() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut cluster = TestCluster::new(ClusterOptions::default());
    cluster.start_all();
    cluster.wait_for_leader(ELECTION).await;
    let all = cluster.node_ids();
    for round in 0..5 {
        let victim = *all.choose(&mut rng).expect("node");
        let writers: Vec<u64> = all.iter().copied().filter(|id| *id != victim).collect();
        let clients: Vec<Client> = writers
            .iter()
            .map(|id| cluster.client(*id, Some("test-operator-token")))
            .collect();
        let writes = tokio::spawn(async move {
            for n in 0..60 {
                let _ = clients[n % clients.len()]
                    .annotate(&format!("round {round} write {n}"))
                    .await;
            }
        });
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..400))).await;
        cluster.kill(victim);
        writes.await.expect("writer task");
        cluster.start(victim);
        cluster.wait_healthy(victim, ELECTION).await;
        wait_converged(&cluster, &all).await;
        let page = cluster
            .admin(victim)
            .audit(0, 1, true)
            .await
            .expect("verify after restart");
        assert!(
            page.verification.expect("verification").valid,
            "round {round}: node {victim}'s chain verifies"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_of_another_cluster_is_refused() {
    let mut first = TestCluster::new(ClusterOptions::default());
    first.start_all();
    first.wait_for_leader(ELECTION).await;
    first.terminate(1);
    let foreign = first.data_dir(1);

    let other = TestCluster::new(ClusterOptions::default());
    let output = std::process::Command::new(switchyard_tests::switchyard_bin())
        .args(["serve", "--node", "1", "--config"])
        .arg(other.config_path())
        .arg("--data-dir")
        .arg(&foreign)
        .output()
        .expect("run switchyard serve");
    assert!(
        !output.status.success(),
        "a foreign data dir must be refused"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("belongs to cluster"),
        "clear error expected, got: {stderr}"
    );
}
