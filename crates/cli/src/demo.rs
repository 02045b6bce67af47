//! `switchyard demo`: a local three-site cluster on loopback, with nothing else to set up.
//!
//! The demo runs the embedded `configs/demo.yaml` and the example runbooks from a temporary
//! directory, starts three nodes as child processes of this same binary, and narrates what
//! happens. Every child and the temporary directory are removed at the end, on error, and on
//! Ctrl-C, so the demo can run again straight away.

use std::collections::BTreeMap;
use std::net::SocketAddr;
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
    /// The stand-in application of each site, as a child process, by site.
    services: BTreeMap<String, Child>,
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
            services: BTreeMap::new(),
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

    /// Starts site `site`'s services: every endpoint of every service in that site, in one process.
    fn start_service(&mut self, site: &str) -> anyhow::Result<()> {
        let exe =
            std::env::current_exe().context("cannot find this program to start demo services")?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("service-{site}.log")))?;
        let mut command = Command::new(exe);
        command.arg("demo-service");
        for service in &self.config.services {
            for endpoint in service
                .endpoints
                .iter()
                .filter(|endpoint| endpoint.site.as_str() == site)
            {
                command
                    .arg("--listen")
                    .arg(SocketAddr::new(endpoint.address, endpoint.port).to_string());
            }
        }
        let child = command
            .stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start the services of site {site}"))?;
        self.services.insert(site.to_owned(), child);
        Ok(())
    }

    fn kill_service(&mut self, site: &str) {
        if let Some(mut child) = self.services.remove(site) {
            let _ = child.kill();
            let _ = child.wait();
        }
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
        for site in self.services.keys().cloned().collect::<Vec<_>>() {
            self.kill_service(&site);
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
        for (site, child) in &mut self.services {
            if let Some(status) = child.try_wait()? {
                let log =
                    std::fs::read_to_string(self.dir.path().join(format!("service-{site}.log")))
                        .unwrap_or_default();
                bail!(
                    "the services of site {site} exited ({status}): {}",
                    log.trim()
                );
            }
        }
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

    async fn run(&mut self, keep_running: bool) -> anyhow::Result<()> {
        println!(
            "== Switchyard demo: three sites on loopback, one controller node and one set of services per site"
        );
        println!(
            "   working directory {} (node and service logs are here)",
            self.dir.path().display()
        );
        self.show_plan()?;

        println!("\n== Starting the services of sites alpha, beta, gamma (www and api in each)");
        for site in ["alpha", "beta", "gamma"] {
            self.start_service(site)?;
        }
        println!("== Starting controller nodes 1, 2, 3 (one per site)");
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
        self.wait_all_healthy(leader).await?;
        println!(
            "   every site is healthy, as seen from every other site ({:.2?} after start)",
            started.elapsed()
        );

        println!("\n== Applying the runbooks (validated against the replicated configuration)");
        let operator = self.client(leader, OPERATOR_TOKEN);
        for (name, text) in DEMO_RUNBOOKS {
            match operator.apply_runbook(text, Some(name)).await? {
                Ok(applied) => println!(
                    "   {} version {} (sha256 {}…)",
                    applied.name,
                    applied.version,
                    &applied.content_hash[..12.min(applied.content_hash.len())]
                ),
                Err(invalid) => bail!(
                    "the embedded runbook {name} is invalid: {:?}",
                    invalid.diagnostics
                ),
            }
        }
        self.print_dns("before the fault").await?;

        let lost_site = "alpha";
        println!("\n== Fire in site {lost_site}: its services die (its controller keeps running)");
        self.kill_service(lost_site);
        let fault = Instant::now();
        let execution = self.narrate_failover(lost_site, fault).await?;
        self.print_dns(&format!("after losing {lost_site}")).await?;
        println!("\n== The execution record (switchyard executions show {execution})");
        let detail = self
            .client(self.any_node(), ADMIN_TOKEN)
            .execution(execution)
            .await?;
        crate::executions::print_detail(&detail);

        println!("\n== Site {lost_site} is repaired: its services come back");
        self.start_service(lost_site)?;
        let repaired = Instant::now();
        self.wait_site_state(lost_site, &["healthy"], repaired)
            .await?;
        println!(
            "\n== Failback: an operator runs failback-site for {lost_site} (switchyard run failback-site --site {lost_site})"
        );
        let request = switchyard_api::NewExecution {
            runbook: "failback-site".into(),
            site: lost_site.into(),
            drill: false,
            parameters: BTreeMap::new(),
            version: None,
        };
        let failback = operator.start_execution(&request).await?.id.0;
        let ended = self.wait_execution_end(failback).await?;
        println!("   failback execution {failback} ended {}", ended);
        if ended != "succeeded" {
            bail!(
                "the failback did not succeed ({ended}); see switchyard executions show {failback}"
            );
        }
        self.print_dns("after the failback").await?;

        if keep_running {
            self.print_usage();
            tokio::signal::ctrl_c()
                .await
                .context("cannot wait for Ctrl-C")?;
        }
        Ok(())
    }

    fn any_node(&self) -> u64 {
        self.children.keys().next().copied().unwrap_or(1)
    }

    async fn wait_all_healthy(&mut self, node: u64) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            self.check_children()?;
            if let Ok(sites) = self.client(node, ADMIN_TOKEN).sites(false).await
                && sites.configured
                && sites.sites.iter().all(|site| {
                    state_name(&site.state) == "healthy" && state_name(&site.consensus) == "up"
                })
            {
                return Ok(());
            }
            if started.elapsed() > STEP_TIMEOUT {
                bail!("the sites did not all become healthy within {STEP_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Prints every state `site` passes through until it reaches one of `targets`.
    async fn wait_site_state(
        &mut self,
        site: &str,
        targets: &[&str],
        since: Instant,
    ) -> anyhow::Result<()> {
        let mut last = String::new();
        loop {
            self.check_children()?;
            let node = self.any_node();
            if let Ok(sites) = self.client(node, ADMIN_TOKEN).sites(false).await
                && let Some(view) = sites.sites.iter().find(|view| view.site.as_str() == site)
            {
                let state = state_name(&view.state);
                if state != last {
                    println!("   +{:>7.2?}  site {site} is {state}", since.elapsed());
                    last = state.clone();
                }
                if targets.contains(&state.as_str()) {
                    return Ok(());
                }
            }
            if since.elapsed() > STEP_TIMEOUT {
                bail!("site {site} did not become {targets:?} within {STEP_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Follows detection and the automatic execution; returns the execution's id.
    async fn narrate_failover(&mut self, site: &str, fault: Instant) -> anyhow::Result<u64> {
        self.wait_site_state(site, &["lost"], fault).await?;
        let started = Instant::now();
        let execution = loop {
            self.check_children()?;
            let list = self
                .client(self.any_node(), ADMIN_TOKEN)
                .executions()
                .await?;
            if let Some(execution) = list.executions.iter().find(|execution| {
                execution
                    .site
                    .as_ref()
                    .is_some_and(|found| found.as_str() == site)
            }) {
                println!(
                    "   +{:>7.2?}  execution {} started: runbook {} v{} (automatic, pre-approved, trigger {})",
                    fault.elapsed(),
                    execution.id.0,
                    execution.runbook,
                    execution.version,
                    execution.trigger
                );
                break execution.id.0;
            }
            if started.elapsed() > STEP_TIMEOUT {
                bail!("no execution started within {STEP_TIMEOUT:?} of the loss");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let ended = self.wait_execution_end(execution).await?;
        println!(
            "   +{:>7.2?}  execution {execution} ended {ended}",
            fault.elapsed()
        );
        if ended != "succeeded" {
            bail!(
                "the evacuation did not succeed ({ended}); see switchyard executions show {execution}"
            );
        }
        Ok(execution)
    }

    async fn wait_execution_end(&mut self, id: u64) -> anyhow::Result<String> {
        let started = Instant::now();
        loop {
            self.check_children()?;
            if let Ok(detail) = self
                .client(self.any_node(), ADMIN_TOKEN)
                .execution(id)
                .await
            {
                let state = serde_json::to_value(detail.summary.state)?
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if !["running", "rolling_back"].contains(&state.as_str()) {
                    return Ok(state);
                }
            }
            if started.elapsed() > STEP_TIMEOUT {
                bail!("execution {id} did not end within {STEP_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asks every node's embedded DNS server directly what it answers for every record.
    async fn print_dns(&self, when: &str) -> anyhow::Result<()> {
        println!("\n== DNS answers from every node, {when}");
        let view = self
            .client(self.any_node(), ADMIN_TOKEN)
            .routing(false)
            .await?;
        for zone in view.zones.iter().filter(|zone| zone.embedded) {
            let report = switchyard_server::dns_tools::verify(
                &zone.expected(),
                &zone.nameservers,
                &[],
                Duration::from_secs(2),
                Duration::from_millis(100),
            )
            .await;
            for check in &report.checks {
                let served = check
                    .answer
                    .as_ref()
                    .map_or("(no answer)".to_owned(), |answer| {
                        answer
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(" ")
                    });
                let node = self
                    .config
                    .nodes
                    .iter()
                    .find(|node| node.dns_addr == check.server)
                    .map_or("?".to_owned(), |node| node.id.to_string());
                println!(
                    "   node {node} ({}): {} {} -> {served}",
                    check.server,
                    check.key.name,
                    check.key.record_type.as_str()
                );
            }
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
        println!("     switchyard executions list");
        println!("     switchyard run evacuate-site --site beta --drill --wait");
        println!(
            "     switchyard dns check --config {}",
            self.config_path.display()
        );
        println!("     switchyard run failback-site --site beta --wait");
        println!("     switchyard audit verify");
        println!(
            "     curl -H 'Authorization: Bearer demo-viewer-token' http://{}/v1/status",
            self.config.nodes[0].api_addr
        );
        println!(
            "   demo tokens (demo only): demo-viewer-token, demo-operator-token, demo-approver-token, demo-auditor-token, demo-admin-token"
        );
    }
}

/// A site state's API name (`healthy`, `lost`, ...).
fn state_name<T: serde::Serialize>(state: &T) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[derive(Debug, clap::Args)]
pub struct ServiceArgs {
    /// An address to answer `200 ok` on; repeat for several.
    #[arg(long, required = true)]
    listen: Vec<SocketAddr>,
}

/// `switchyard demo-service`: the stand-in application of one demo site. It stops when its
/// standard input closes, so it never outlives the demo that started it.
pub fn service(args: ServiceArgs) -> Result<Outcome, UsageError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    runtime.spawn(async move {
        use tokio::io::AsyncReadExt as _;
        let mut stdin = tokio::io::stdin();
        let mut buffer = [0_u8; 64];
        while matches!(stdin.read(&mut buffer).await, Ok(read) if read > 0) {}
        stop.cancel();
    });
    runtime.block_on(switchyard_server::demo_service::serve_ok(
        &args.listen,
        shutdown,
    ))?;
    Ok(Outcome::Success)
}
