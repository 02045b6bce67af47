//! `switchyard demo`: a local three-site cluster on loopback, with nothing else to set up.
//!
//! The demo runs the embedded `configs/demo.yaml` and the example runbooks from a temporary
//! directory, starts three nodes as child processes of this same binary, and narrates what
//! happens. Every child and the temporary directory are removed at the end, on error, and on
//! Ctrl-C, so the demo can run again straight away.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use switchyard_api::{Client, Status};
use switchyard_core::config::ClusterConfig;

use crate::{Outcome, UsageError};

const DEMO_CONFIG: &str = include_str!("../../../configs/demo.yaml");
const DEMO_SECRET: &str = include_str!("../../../configs/demo-cluster.secret");
const DEMO_RUNBOOKS: [(&str, &str); 3] = [
    (
        "evacuate-site.yaml",
        include_str!("../../../runbooks/evacuate-site.yaml"),
    ),
    (
        "failback-site.yaml",
        include_str!("../../../runbooks/failback-site.yaml"),
    ),
    (
        "service-failover.yaml",
        include_str!("../../../runbooks/service-failover.yaml"),
    ),
];
const OPERATOR_TOKEN: &str = "demo-operator-token";
const ADMIN_TOKEN: &str = "demo-admin-token";
/// Longest the demo waits for any one thing before it gives up and cleans up.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Leave the cluster running at the end and print how to use it; Ctrl-C stops it.
    #[arg(long)]
    keep_running: bool,
}

pub fn run(args: Args) -> Result<Outcome, UsageError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut demo = Demo::new().context("cannot prepare the demo")?;
    let result = runtime.block_on(async {
        tokio::select! {
            result = demo.run(args.keep_running) => result,
            _ = tokio::signal::ctrl_c() => {
                println!("\ninterrupted: stopping the demo cluster");
                Ok(())
            }
        }
    });
    demo.stop_all();
    let dir = demo.dir.path().display().to_string();
    drop(demo);
    println!("cleaned up: every demo process stopped, {dir} removed");
    result.map(|()| Outcome::Success).map_err(UsageError)
}

struct Demo {
    dir: tempfile::TempDir,
    config: ClusterConfig,
    config_path: PathBuf,
    children: BTreeMap<u64, Child>,
}

impl Demo {
    fn new() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("switchyard-demo-")
            .tempdir()
            .context("cannot create a temp dir")?;
        let config_path = dir.path().join("demo.yaml");
        std::fs::write(&config_path, DEMO_CONFIG)?;
        std::fs::write(dir.path().join("demo-cluster.secret"), DEMO_SECRET)?;
        std::fs::create_dir_all(dir.path().join("runbooks"))?;
        for (name, text) in DEMO_RUNBOOKS {
            std::fs::write(dir.path().join("runbooks").join(name), text)?;
        }
        let loaded = switchyard_spec::load_config(&config_path)?;
        let Some(config) = loaded.value else {
            bail!(
                "the embedded demo configuration is invalid: {:?}",
                loaded.diagnostics
            );
        };
        Ok(Self {
            dir,
            config,
            config_path,
            children: BTreeMap::new(),
        })
    }

    fn client(&self, node: u64, token: &str) -> Client {
        let api = self
            .config
            .nodes
            .iter()
            .find(|candidate| candidate.id.0 == node)
            .map(|found| found.api_addr);
        let api = api.map_or_else(String::new, |addr| format!("http://{addr}"));
        Client::new(api, Some(token.to_owned()), Duration::from_secs(5))
    }

    fn site_of(&self, node: u64) -> String {
        self.config
            .nodes
            .iter()
            .find(|candidate| candidate.id.0 == node)
            .map_or("?".to_owned(), |found| found.site.to_string())
    }

    fn start(&mut self, node: u64) -> anyhow::Result<()> {
        let exe =
            std::env::current_exe().context("cannot find this program to start demo nodes")?;
        let log_path = self.dir.path().join(format!("node-{node}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let child = Command::new(exe)
            .arg("serve")
            .arg("--config")
            .arg(&self.config_path)
            .arg("--node")
            .arg(node.to_string())
            .arg("--data-dir")
            .arg(self.dir.path().join(format!("data-{node}")))
            .arg("--stop-when-stdin-closes")
            .env("RUST_LOG", "info,openraft=warn")
            // The child stops when this pipe closes, so even a killed demo leaves no node behind.
            .stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start demo node {node}"))?;
        self.children.insert(node, child);
        Ok(())
    }

    fn kill(&mut self, node: u64) {
        if let Some(mut child) = self.children.remove(&node) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn stop_all(&mut self) {
        for node in self.children.keys().copied().collect::<Vec<_>>() {
            self.kill(node);
        }
    }

    async fn statuses(&self) -> Vec<(u64, Option<Status>)> {
        let mut statuses = Vec::new();
        for node in self.config.nodes.iter().map(|node| node.id.0) {
            let status = if self.children.contains_key(&node) {
                self.client(node, ADMIN_TOKEN).status(false).await.ok()
            } else {
                None
            };
            statuses.push((node, status));
        }
        statuses
    }

    /// Waits until every running node names the same leader.
    async fn wait_for_leader(&mut self) -> anyhow::Result<u64> {
        let started = Instant::now();
        loop {
            self.check_children()?;
            let statuses = self.statuses().await;
            let leaders: Vec<Option<u64>> = statuses
                .iter()
                .filter(|(node, _)| self.children.contains_key(node))
                .map(|(_, status)| {
                    status
                        .as_ref()
                        .and_then(|status| status.leader.as_ref())
                        .map(|leader| leader.node.0)
                })
                .collect();
            if let Some(Some(leader)) = leaders.first()
                && leaders.iter().all(|seen| *seen == Some(*leader))
                && self.children.contains_key(leader)
            {
                return Ok(*leader);
            }
            if started.elapsed() > STEP_TIMEOUT {
                bail!(
                    "no leader after {STEP_TIMEOUT:?}; node logs are in {}",
                    self.dir.path().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Fails if a demo node exited on its own (a port in use, say), pointing at its log.
    fn check_children(&mut self) -> anyhow::Result<()> {
        for (node, child) in &mut self.children {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(self.dir.path().join(format!("node-{node}.log")))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                bail!(
                    "demo node {node} exited ({status}); is another demo or program using ports 7101-7103/7201-7203?\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
        }
        Ok(())
    }

    async fn print_status(&self) {
        for (node, status) in self.statuses().await {
            match status {
                Some(status) => println!(
                    "  node {node} (site {}): {:?}, term {}, applied {}, audit head {}",
                    status.site,
                    status.role,
                    status.term,
                    status.last_applied_index.unwrap_or(0),
                    &status.audit_head[..12]
                ),
                None => println!("  node {node} (site {}): down", self.site_of(node)),
            }
        }
    }

    async fn annotate(&self, node: u64, text: &str) -> anyhow::Result<u64> {
        let result = self.client(node, OPERATOR_TOKEN).annotate(text).await?;
        Ok(result.index)
    }

    async fn run(&mut self, keep_running: bool) -> anyhow::Result<()> {
        println!("== Switchyard demo: three sites on loopback, one controller node per site");
        println!("   working directory {}", self.dir.path().display());
        self.show_plan()?;

        println!("\n== Starting nodes 1, 2, 3 (sites alpha, beta, gamma)");
        for node in [1, 2, 3] {
            self.start(node)?;
        }
        let started = Instant::now();
        let leader = self.wait_for_leader().await?;
        println!(
            "   leader elected in {:.2?}: node {leader} in site {}",
            started.elapsed(),
            self.site_of(leader)
        );
        self.print_status().await;

        println!("\n== Writing the incident timeline through a follower (forwarded to the leader)");
        let follower = [1, 2, 3]
            .into_iter()
            .find(|node| *node != leader)
            .unwrap_or(1);
        for text in [
            "drill starts: site loss of the leader's site",
            "on call: demo-operator",
        ] {
            let index = self.annotate(follower, text).await?;
            println!("   committed at log index {index}: {text}");
        }

        println!(
            "\n== Losing site {}: kill -9 of node {leader}, the leader",
            self.site_of(leader)
        );
        self.kill(leader);
        let lost_at = Instant::now();
        let new_leader = self.wait_for_leader().await?;
        println!(
            "   new leader in {:.2?}: node {new_leader} in site {} (election timeouts are WAN-sized: 1.5-3 s)",
            lost_at.elapsed(),
            self.site_of(new_leader)
        );
        let index = self
            .annotate(new_leader, "controller survived the loss of a site")
            .await?;
        println!("   writes continue: committed at log index {index}");
        self.print_status().await;

        println!(
            "\n== Site {} is back: node {leader} restarts from its data directory",
            self.site_of(leader)
        );
        self.start(leader)?;
        let head = self.wait_converged().await?;
        println!("   caught up; every node has audit head {}", &head[..16]);
        self.print_status().await;
        let page = self
            .client(leader, "demo-auditor-token")
            .audit(0, 0, true)
            .await?;
        let verification = page.verification.context("no verification in the answer")?;
        println!(
            "   audit chain on node {leader}: {} entries, {}",
            verification.entries_checked,
            if verification.valid {
                "every hash link verifies"
            } else {
                "BROKEN"
            }
        );
        if !verification.valid {
            bail!("the audit chain does not verify: {:?}", verification.error);
        }

        if keep_running {
            self.print_usage();
            tokio::signal::ctrl_c()
                .await
                .context("cannot wait for Ctrl-C")?;
        }
        Ok(())
    }

    fn show_plan(&self) -> anyhow::Result<()> {
        let runbook_path = self.dir.path().join("runbooks/evacuate-site.yaml");
        let loaded = switchyard_spec::load_runbook(&runbook_path, &self.config)?;
        let runbook = loaded
            .value
            .context("the embedded evacuate-site runbook is invalid")?;
        let plan = crate::plan::make_plan(&self.config, &runbook, "alpha", &[])
            .map_err(|error| error.0)?;
        println!(
            "\n== What the evacuate-site runbook would do if site alpha were lost (switchyard plan)"
        );
        for line in
            crate::plan::render_text(&plan, Path::new("runbooks/evacuate-site.yaml")).lines()
        {
            println!("   {line}");
        }
        Ok(())
    }

    async fn wait_converged(&mut self) -> anyhow::Result<String> {
        let started = Instant::now();
        loop {
            self.check_children()?;
            let statuses = self.statuses().await;
            let heads: Vec<Option<(String, Option<u64>)>> = statuses
                .iter()
                .map(|(_, status)| {
                    status
                        .as_ref()
                        .map(|status| (status.audit_head.clone(), status.last_applied_index))
                })
                .collect();
            if let Some(Some(first)) = heads.first()
                && heads.iter().all(|head| head.as_ref() == Some(first))
            {
                return Ok(first.0.clone());
            }
            if started.elapsed() > STEP_TIMEOUT {
                bail!("nodes did not converge after {STEP_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn print_usage(&self) {
        println!("\n== The demo cluster keeps running; press Ctrl-C to stop it and clean up");
        for node in &self.config.nodes {
            println!(
                "   node {} (site {}): API http://{}",
                node.id, node.site, node.api_addr
            );
        }
        println!("   try, in another terminal:");
        println!(
            "     export SWITCHYARD_SERVER=http://{} SWITCHYARD_TOKEN={OPERATOR_TOKEN}",
            self.config.nodes[0].api_addr
        );
        println!("     switchyard status");
        println!("     switchyard annotate \"hello from the demo\"");
        println!("     switchyard audit list");
        println!(
            "     curl -H 'Authorization: Bearer demo-viewer-token' http://{}/v1/status",
            self.config.nodes[0].api_addr
        );
        println!(
            "   demo tokens (demo only): demo-viewer-token, demo-operator-token, demo-approver-token, demo-auditor-token, demo-admin-token"
        );
    }
}
