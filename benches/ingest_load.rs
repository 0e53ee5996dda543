//! Load bench of the correlator's ingest path: sustained alerts/s into ClickHouse and the
//! latency from `POST` to the incident being visible in ClickHouse.
//!
//! Starts a private clickhouse-server and the release `tocsin correlator`, pre-generates
//! NDJSON bodies (zstd, distinct alert IDs, `--keys` distinct dedup keys), then `--clients`
//! threads post them as fast as the correlator acknowledges (honouring 429/503 +
//! Retry-After). A probe thread posts one alert with a fresh dedup key every 100 ms and
//! polls ClickHouse until the incident it must open (its ID is computed the way the
//! correlator does) is there. At the end, `count()` in ClickHouse must equal the alerts
//! acknowledged. Run with `benches/ingest-load.sh` (see `benches/README.md`).
//!
//! Arguments (after `--`): `--alerts N` (default 1,000,000), `--batch N` (5,000 per request),
//! `--clients N` (4), `--keys N` (2,000).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "bench harness"
)]

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tocsin_correlator::dedup::incident_id;
use tocsin_correlator::store::local::{LocalClickHouse, LocalOptions};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_us() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
}

fn line(sensor: &str, seq: u64, ts_us: i64, sid: u32, src: &str, dst: &str) -> String {
    format!(
        concat!(
            r#"{{"timestamp":"{ts}","flow_id":{seq},"event_type":"alert","src_ip":"{src}","src_port":{sp},"#,
            r#""dest_ip":"{dst}","dest_port":443,"proto":"TCP","alert":{{"action":"allowed","gid":1,"#,
            r#""signature_id":{sid},"rev":3,"signature":"BENCH signature {sid}","category":"Misc activity","severity":2}},"#,
            r#""app_proto":"tls","sensor":{{"id":"{sensor}"}},"alert_id":"{sensor}:00000000000000b0:{seq}"}}"#
        ),
        ts = tocsin_eve::Timestamp(ts_us),
        seq = seq,
        src = src,
        sp = 1024 + seq % 60000,
        dst = dst,
        sid = sid,
        sensor = sensor,
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "index math"
    )]
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn main() {
    let total = arg("--alerts", 1_000_000);
    let batch = arg("--batch", 5000);
    let clients = arg("--clients", 4);
    let keys = arg("--keys", 2000).max(1);
    // `cargo bench` passes --bench; nothing else to do for `--list` etc.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    eprintln!(
        "ingest-load: {total} alerts, {batch} per request, {clients} clients, {keys} dedup keys"
    );

    let ch = LocalClickHouse::start_in(
        &tempfile::Builder::new()
            .prefix("tocsin-bench-ch-")
            .tempdir()
            .unwrap()
            .keep(),
        LocalOptions {
            stop_with_pid: Some(std::process::id()),
            ..LocalOptions::default()
        },
    )
    .expect("clickhouse-server");
    let url = ch.url();
    let db = "bench";
    let bin = env!("CARGO_BIN_EXE_tocsin");
    let token = {
        let out = Command::new(bin)
            .args([
                "token",
                "create",
                "--role",
                "sensor",
                "--agency",
                "MOH",
                "--name",
                "bench",
                "--clickhouse-url",
                &url,
                "--database",
                db,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = std::env::temp_dir().join(format!("tocsin-bench-{port}.toml"));
    std::fs::write(&cfg, "[ingest]\nbatch_max_alerts = 100000\nbatch_max_delay = \"100ms\"\nqueue_max_alerts = 400000\n").unwrap();
    let mut correlator = Command::new(bin)
        .args([
            "correlator",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--clickhouse-url",
            &url,
            "--database",
            db,
            "-c",
        ])
        .arg(&cfg)
        .env(
            "RUST_LOG",
            std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stderr(match std::env::var("BENCH_LOG_FILE") {
            Ok(f) => Stdio::from(std::fs::File::create(f).unwrap()),
            Err(_) => Stdio::inherit(),
        })
        .spawn()
        .unwrap();
    let api = format!("http://127.0.0.1:{port}");
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let t = Instant::now();
    while http
        .get(format!("{api}/healthz"))
        .send()
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "correlator did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Pre-generate bodies: alert i has key (sid, src, dst) = i mod keys; timestamps advance
    // 10 µs per alert (a 100,000 alerts/s stream), ending a minute ago.
    let gen_start = Instant::now();
    let base = now_us() - 60_000_000 - i64::try_from(total).unwrap() * 10;
    let n_bodies = total.div_ceil(batch);
    let bodies: Vec<Vec<u8>> = (0..n_bodies)
        .map(|b| {
            let mut text = String::with_capacity(usize::try_from(batch).unwrap() * 360);
            for j in 0..batch {
                let i = b * batch + j;
                if i >= total {
                    break;
                }
                let k = i % keys;
                let src = format!("10.{}.{}.{}", 1 + k % 7, (k / 7) % 250, (k / 1750) % 250);
                let dst = format!("192.168.{}.{}", (k % 11) % 250, (k % 13) % 250);
                let sid = 2_000_000 + u32::try_from(k % 17).unwrap();
                text.push_str(&line(
                    "bench",
                    i + 1,
                    base + i64::try_from(i).unwrap() * 10,
                    sid,
                    &src,
                    &dst,
                ));
                text.push('\n');
            }
            zstd::encode_all(text.as_bytes(), 1).unwrap()
        })
        .collect();
    let raw_mib: f64 = bodies.iter().map(|b| b.len() as f64).sum::<f64>() / 1048576.0;
    eprintln!(
        "generated {n_bodies} bodies ({raw_mib:.1} MiB zstd) in {:?}",
        gen_start.elapsed()
    );

    let next = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let bodies = Arc::new(bodies);
    // Probe: one new dedup key every 100 ms; latency until its incident row is in ClickHouse.
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let probe = {
        let (api, token, url, done, latencies, http) = (
            api.clone(),
            token.clone(),
            url.clone(),
            done.clone(),
            latencies.clone(),
            http.clone(),
        );
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !done.load(Ordering::Relaxed) {
                n += 1;
                let ts = now_us() - 1_000_000;
                let src = format!("172.16.{}.{}", (n / 250) % 250, n % 250);
                let body = line("probe", n, ts, 2_999_999, &src, "192.0.2.1");
                let key =
                    format!("default\u{1f}signature_id=2999999|src_ip={src}|dest_ip=192.0.2.1");
                let id = incident_id("MOH", &key, ts);
                let t0 = Instant::now();
                loop {
                    match http
                        .post(format!("{api}/api/v1/alerts"))
                        .bearer_auth(&token)
                        .body(body.clone())
                        .send()
                    {
                        Ok(r) if r.status() == 200 => break,
                        _ => std::thread::sleep(Duration::from_millis(20)),
                    }
                    if t0.elapsed() > Duration::from_secs(60) || done.load(Ordering::Relaxed) {
                        break;
                    }
                }
                loop {
                    let r = http
                        .post(format!("{url}/"))
                        .body(format!(
                            "SELECT count() FROM {db}.incidents WHERE id = toUUID('{id}')"
                        ))
                        .send()
                        .and_then(reqwest::blocking::Response::text)
                        .unwrap_or_default();
                    if r.trim() == "1" {
                        latencies.lock().unwrap().push(t0.elapsed().as_secs_f64());
                        break;
                    }
                    if t0.elapsed() > Duration::from_secs(60) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let start = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (api, token, next, accepted, retries, bodies, http) = (
                api.clone(),
                token.clone(),
                next.clone(),
                accepted.clone(),
                retries.clone(),
                bodies.clone(),
                http.clone(),
            );
            std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(usize::try_from(i).unwrap()) else {
                        break;
                    };
                    loop {
                        let r = http
                            .post(format!("{api}/api/v1/alerts"))
                            .bearer_auth(&token)
                            .header("Content-Encoding", "zstd")
                            .body(body.clone())
                            .send();
                        match r {
                            Ok(r) if r.status() == 200 => {
                                let v: serde_json::Value = r.json().unwrap();
                                accepted.fetch_add(
                                    v["accepted"].as_u64().unwrap_or(0),
                                    Ordering::Relaxed,
                                );
                                break;
                            }
                            Ok(r) => {
                                retries.fetch_add(1, Ordering::Relaxed);
                                let wait = r
                                    .headers()
                                    .get("retry-after")
                                    .and_then(|v| v.to_str().ok())
                                    .and_then(|v| v.parse::<u64>().ok())
                                    .unwrap_or(1);
                                std::thread::sleep(Duration::from_millis(wait * 200));
                            }
                            Err(_) => {
                                retries.fetch_add(1, Ordering::Relaxed);
                                std::thread::sleep(Duration::from_millis(200));
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let elapsed = start.elapsed();
    done.store(true, Ordering::Relaxed);
    probe.join().unwrap();
    let acc = accepted.load(Ordering::Relaxed);
    let stored: u64 = http
        .post(format!("{url}/"))
        .body(format!(
            "SELECT count() FROM {db}.alerts WHERE sensor = 'bench'"
        ))
        .send()
        .unwrap()
        .text()
        .unwrap()
        .trim()
        .parse()
        .unwrap_or(0);
    let incidents = http
        .post(format!("{url}/"))
        .body(format!("SELECT count() FROM {db}.incidents FINAL"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort_by(f64::total_cmp);
    #[allow(clippy::cast_precision_loss, reason = "report")]
    let rate = acc as f64 / elapsed.as_secs_f64();
    println!(
        "alerts acknowledged: {acc} of {total} in {:.2} s",
        elapsed.as_secs_f64()
    );
    println!("alerts stored (count() in ClickHouse, probe alerts excluded): {stored}");
    println!(
        "sustained ingest: {rate:.0} alerts/s ({clients} clients x {batch} alerts per request, {keys} dedup keys)"
    );
    println!("incidents: {}", incidents.trim());
    println!(
        "retried requests (429/503): {}",
        retries.load(Ordering::Relaxed)
    );
    println!(
        "POST -> incident visible in ClickHouse: n={} p50={:.3} s p99={:.3} s max={:.3} s",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );
    let _ = correlator.kill();
    let _ = correlator.wait();
    let _ = std::fs::remove_file(&cfg);
    let dir = ch.dir().to_owned();
    drop(ch);
    let _ = std::fs::remove_dir_all(dir);
    assert_eq!(stored, acc, "every acknowledged alert is in ClickHouse");
}
