//! Benchmark: 10,000 HTTP endpoints probed at a 1 s interval by one prober, for
//! `PROBE_BENCH_SECS` seconds (default 60). Prints probes per second, the on-schedule fraction,
//! the prober's CPU (fraction of one core) and its peak RSS.
//!
//! The endpoints are 127.0.1.1–127.0.40.250 on one port, served by this same binary re-executed
//! as a child process (`PROBE_BENCH_SERVER=1`), so that the figures below are the prober's own.
//! Run with `cargo bench -p switchyard-probe`; `PROBE_BENCH_ENDPOINTS` changes the count.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard_core::config::{DetectionPolicy, HealthCheck, HttpCheck};
use switchyard_core::{EndpointId, NodeId, ServiceId, SiteId};
use switchyard_probe::{Prober, ProberOptions, ProberStats, Target, Verdict};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const SERVER_ENV: &str = "PROBE_BENCH_SERVER";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// The `index`-th endpoint address: 250 per /24, starting at 127.0.1.1.
fn address(index: usize) -> IpAddr {
    let third = u8::try_from(1 + index / 250).expect("at most 63,750 endpoints");
    let fourth = u8::try_from(1 + index % 250).expect("below 250");
    IpAddr::V4(Ipv4Addr::new(127, 0, third, fourth))
}

fn main() {
    let endpoints = usize::try_from(env_number("PROBE_BENCH_ENDPOINTS", 10_000)).unwrap();
    if std::env::var_os(SERVER_ENV).is_some() {
        serve(endpoints);
    } else {
        bench(
            endpoints,
            Duration::from_secs(env_number("PROBE_BENCH_SECS", 60)),
        );
    }
}

/// Child process: one listener per endpoint, answering `200 ok` and closing.
fn serve(endpoints: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let first = TcpListener::bind((address(0), 0)).await.unwrap();
        let port = first.local_addr().unwrap().port();
        let mut listeners = vec![first];
        for index in 1..endpoints {
            listeners.push(TcpListener::bind((address(index), port)).await.unwrap());
        }
        for listener in listeners {
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    tokio::spawn(async move {
                        let mut head = Vec::new();
                        let mut buffer = [0u8; 2048];
                        while head.len() < 16 * 1024 {
                            match stream.read(&mut buffer).await {
                                Ok(0) | Err(_) => return,
                                Ok(read) => head.extend_from_slice(&buffer[..read]),
                            }
                            if head.windows(4).any(|window| window == b"\r\n\r\n") {
                                break;
                            }
                        }
                        let response =
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                        let _ = stream.write_all(response).await;
                        let _ = stream.shutdown().await;
                    });
                }
            });
        }
        println!("ready {port}");
        // The parent kills us; reading stdin's end is a second way to notice it went away.
        let mut stdin = tokio::io::stdin();
        let mut sink = [0u8; 64];
        while let Ok(read) = stdin.read(&mut sink).await {
            if read == 0 {
                break;
            }
        }
    });
}

/// User and system CPU time of a process, from /proc/PID/stat, in clock ticks.
fn cpu_ticks(pid: &str) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may contain spaces; the fields that follow it do not.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |index: usize| -> u64 {
        fields
            .get(index)
            .and_then(|value| value.parse().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the file; `fields` starts at field 3.
    (field(11), field(12))
}

fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn bench(endpoints: usize, duration: Duration) {
    let mut server = Command::new(std::env::current_exe().unwrap())
        .env(SERVER_ENV, "1")
        .env("PROBE_BENCH_ENDPOINTS", endpoints.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let server_pid = server.id().to_string();
    let mut ready = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    let port: u16 = ready
        .trim()
        .strip_prefix("ready ")
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("server did not start: {ready:?}"));

    let check = HealthCheck::Http(HttpCheck {
        method: "GET".to_owned(),
        path: "/health".to_owned(),
        expected_status: vec![200],
        body_contains: Some("ok".to_owned()),
        host: None,
        tls: false,
        tls_verify: true,
    });
    let service = ServiceId::new("bench");
    let site = SiteId::new("site-a");
    let targets: Vec<Target> = (0..endpoints)
        .map(|index| Target {
            endpoint: EndpointId::of(&service, &site, index + 1),
            service: service.clone(),
            site: site.clone(),
            address: SocketAddr::new(address(index), port),
            check: check.clone(),
        })
        .collect();
    let policy = DetectionPolicy::default();
    // Failed probes by kind, to tell a slow server from a broken one.
    let failures: Arc<Mutex<BTreeMap<&'static str, u64>>> = Arc::default();
    let counted = Arc::clone(&failures);
    let options = ProberOptions {
        concurrency_max: std::env::var("PROBE_BENCH_CONCURRENCY")
            .ok()
            .and_then(|value| value.parse().ok()),
        observation_hook: Some(Arc::new(move |_, observation| {
            if let Some(error) = &observation.error {
                *counted.lock().unwrap().entry(error.kind()).or_default() += 1;
            }
        })),
        ..ProberOptions::default()
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let ticks_per_second = clock_ticks_per_second() as f64;
    let (stats, up, flips, cpu, server_cpu, wall, latencies) = runtime.block_on(async move {
        let (prober, mut flip_receiver) =
            Prober::with_targets(targets, &policy, NodeId(1), options).unwrap();
        let handle = prober.handle();
        let cancel = CancellationToken::new();
        let flips = tokio::spawn(async move {
            let mut count = 0u64;
            while flip_receiver.recv().await.is_some() {
                count += 1;
            }
            count
        });
        let running = tokio::spawn(prober.run(cancel.clone()));
        // Skip the start: the first interval spreads the endpoints out and confirms their
        // first verdicts, which is not the steady state this benchmark is about.
        let warmup = Duration::from_secs(3).min(duration / 4);
        tokio::time::sleep(warmup).await;
        let before: ProberStats = handle.stats();
        let cpu_before = cpu_ticks("self");
        let server_before = cpu_ticks(&server_pid);
        let started = Instant::now();
        tokio::time::sleep(duration - warmup).await;
        let wall = started.elapsed();
        let cpu_after = cpu_ticks("self");
        let cpu = (
            (cpu_after.0 - cpu_before.0) as f64 / ticks_per_second,
            (cpu_after.1 - cpu_before.1) as f64 / ticks_per_second,
        );
        let server_after = cpu_ticks(&server_pid);
        let server_cpu = ((server_after.0 + server_after.1) - (server_before.0 + server_before.1))
            as f64
            / ticks_per_second;
        let after = handle.stats();
        let snapshot = handle.snapshot();
        let up = snapshot
            .iter()
            .filter(|status| status.verdict == Some(Verdict::Up))
            .count();
        let mut latencies: Vec<Duration> = snapshot
            .iter()
            .filter_map(|status| status.last_observation.as_ref())
            .map(|observation| observation.latency)
            .collect();
        latencies.sort();
        cancel.cancel();
        running.await.unwrap();
        drop(handle);
        let stats = ProberStats {
            endpoints: after.endpoints,
            probes_started: after.probes_started - before.probes_started,
            probes_on_schedule: after.probes_on_schedule - before.probes_on_schedule,
            probes_skipped_busy: after.probes_skipped_busy - before.probes_skipped_busy,
            probes_skipped_overrun: after.probes_skipped_overrun - before.probes_skipped_overrun,
            probes_confirm: after.probes_confirm - before.probes_confirm,
            probes_failed: after.probes_failed - before.probes_failed,
            flips: after.flips,
        };
        (stats, up, flips, cpu, server_cpu, wall, latencies)
    });
    let _ = server.kill();
    let _ = server.wait();
    let flips = runtime.block_on(flips).unwrap_or(0);

    let seconds = wall.as_secs_f64();
    let slots = stats.probes_started + stats.probes_skipped_busy + stats.probes_skipped_overrun;
    let fraction = |part: u64, whole: u64| {
        if whole == 0 {
            0.0
        } else {
            part as f64 / whole as f64
        }
    };
    println!(
        "probe_10k: {endpoints} HTTP endpoints, interval 1 s, concurrency_max {}, measured \
         {seconds:.1} s after warm-up",
        std::env::var("PROBE_BENCH_CONCURRENCY").unwrap_or_else(|_| "default".to_owned())
    );
    println!(
        "  probes/s:           {:.0} (regular {:.0}, confirmation {:.0}; target {endpoints})",
        (stats.probes_started + stats.probes_confirm) as f64 / seconds,
        stats.probes_started as f64 / seconds,
        stats.probes_confirm as f64 / seconds,
    );
    println!(
        "  on schedule:        {:.4} of {slots} slots (started within 100 ms of due)",
        fraction(stats.probes_on_schedule, slots)
    );
    println!(
        "  skipped:            {} busy, {} overrun; failed probes {}",
        stats.probes_skipped_busy, stats.probes_skipped_overrun, stats.probes_failed
    );
    println!(
        "  failures by kind:   {:?} (whole run, warm-up included)",
        failures.lock().unwrap()
    );
    println!(
        "  verdicts up:        {up} of {endpoints}; flips {} ({flips} received)",
        stats.flips
    );
    let percentile = |fraction: f64| {
        let index = ((latencies.len() as f64 - 1.0) * fraction).round() as usize;
        latencies.get(index).copied().unwrap_or_default()
    };
    println!(
        "  probe latency:      p50 {:?}, p99 {:?}, max {:?} (last probe of each endpoint)",
        percentile(0.5),
        percentile(0.99),
        percentile(1.0)
    );
    println!(
        "  prober cpu:         {:.3} of one core (user {:.3}, system {:.3})",
        (cpu.0 + cpu.1) / seconds,
        cpu.0 / seconds,
        cpu.1 / seconds
    );
    println!(
        "  machine load:       {} (1, 5, 15 min; other processes share the 2 cores)",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  server cpu (child): {:.3} of one core",
        server_cpu / seconds
    );
    println!(
        "  prober peak rss:    {:.1} MiB",
        peak_rss_kib() as f64 / 1024.0
    );
}
