//! Helpers shared by the integration tests.

#![allow(dead_code, reason = "each test module uses a different subset")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failure is a test failure"
)]

use std::path::{Path, PathBuf};

/// Path to the `tocsin` binary built for this test run.
pub fn tocsin_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tocsin"))
}

/// The shared test data (`../shared/testdata` next to the repo), or `None` with a message on
/// stderr when it is absent (tests then skip with that message).
pub fn shared_testdata() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP: {} is absent; tests over shared data are skipped",
            dir.display()
        );
        None
    }
}

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tocsin_correlator::store::local::{LocalClickHouse, LocalOptions};

/// A private clickhouse-server shared by the tests of this binary (one per run; it stops
/// when the test process exits, through its watchdog). Each test uses its own database.
pub fn clickhouse() -> &'static LocalClickHouse {
    static CH: OnceLock<LocalClickHouse> = OnceLock::new();
    CH.get_or_init(|| start_clickhouse(None))
}

/// Starts a dedicated clickhouse-server (for tests that stop and restart it), in `dir` or a
/// temporary directory; it stops on drop or when the test process exits.
pub fn start_clickhouse(dir: Option<&Path>) -> LocalClickHouse {
    let opts = LocalOptions {
        stop_with_pid: Some(std::process::id()),
        ..LocalOptions::default()
    };
    let temp;
    let dir = match dir {
        Some(d) => d.to_owned(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("tocsin-test-ch-")
                .tempdir()
                .unwrap();
            temp.keep()
        }
    };
    LocalClickHouse::start_in(&dir, opts)
        .expect("clickhouse-server must start (apt install clickhouse-server)")
}

/// Runs SQL over HTTP and returns the trimmed text answer (TabSeparated).
pub fn ch_query(url: &str, sql: &str) -> String {
    let resp = reqwest::blocking::Client::new()
        .post(format!("{url}/"))
        .body(sql.to_owned())
        .send()
        .unwrap();
    let status = resp.status();
    let text = resp.text().unwrap();
    assert!(status.is_success(), "{sql}: {status} {text}");
    text.trim().to_owned()
}

/// A fresh database name for one test.
pub fn fresh_db(test: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let clean: String = test
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!(
        "t_{}_{}_{}",
        clean,
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `tocsin correlator` process.
pub struct CorrelatorProc {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Port.
    pub port: u16,
}

impl CorrelatorProc {
    /// Starts the correlator on `port` (0: a free one) with an optional config file and
    /// waits for `/healthz` to answer 200.
    pub fn start(ch_url: &str, db: &str, port: u16, config: Option<&Path>) -> Self {
        let port = if port == 0 { free_port() } else { port };
        let mut cmd = Command::new(tocsin_bin());
        cmd.args([
            "correlator",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--clickhouse-url",
            ch_url,
            "--database",
            db,
        ]);
        if let Some(c) = config {
            cmd.arg("-c").arg(c);
        }
        let log = std::env::temp_dir().join(format!("tocsin-correlator-{db}-{port}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = cmd
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let me = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            port,
        };
        let start = Instant::now();
        loop {
            if let Ok(r) = reqwest::blocking::get(format!("{}/healthz", me.url))
                && r.status() == 200
            {
                return me;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "correlator not healthy; see {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for CorrelatorProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Creates a token with `tocsin token create` (the real CLI) and returns it.
pub fn create_token(ch_url: &str, db: &str, role: &str, agency: &str, name: &str) -> String {
    let out = Command::new(tocsin_bin())
        .args([
            "token",
            "create",
            "--role",
            role,
            "--agency",
            agency,
            "--name",
            name,
            "--clickhouse-url",
            ch_url,
            "--database",
            db,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "token create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "token alone on stdout: {text:?}");
    lines[0].to_owned()
}

/// One Tocsin EVE alert line. `ts_us` is microseconds since the epoch.
#[allow(clippy::too_many_arguments)]
pub fn eve_line(
    sensor: &str,
    seq: u64,
    ts_us: i64,
    sid: u32,
    category: &str,
    src: &str,
    dst: &str,
    dport: u16,
) -> String {
    let ts = tocsin_eve::Timestamp(ts_us).to_string();
    serde_json::json!({
        "timestamp": ts, "flow_id": seq, "event_type": "alert",
        "src_ip": src, "src_port": 40000 + (seq % 20000), "dest_ip": dst, "dest_port": dport, "proto": "TCP",
        "alert": {"action": "allowed", "gid": 1, "signature_id": sid, "rev": 1,
                  "signature": format!("TEST sid {sid}"), "category": category, "severity": 2},
        "sensor": {"id": sensor},
        "alert_id": format!("{sensor}:{:016x}:{seq}", 0xabcd_u64),
    })
    .to_string()
}

/// Now, microseconds since the epoch.
pub fn now_us() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
}

/// POSTs an NDJSON body; returns (status, JSON answer, Retry-After).
pub fn post_alerts(
    url: &str,
    token: &str,
    body: Vec<u8>,
    encoding: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut req = reqwest::blocking::Client::new()
        .post(format!("{url}/api/v1/alerts"))
        .bearer_auth(token)
        .body(body);
    if let Some(e) = encoding {
        req = req.header("Content-Encoding", e);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    let json = resp.json().unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// A spawned `tocsin forward-file` whose stdout lines are collected.
pub struct ForwardProc {
    /// The process.
    pub child: Child,
    /// Stdout lines so far.
    pub lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ForwardProc {
    /// Starts `tocsin forward-file` with extra arguments.
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new(tocsin_bin())
            .arg("forward-file")
            .args(args)
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let l2 = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                l2.lock().unwrap().push(line);
            }
        });
        Self { child, lines }
    }

    /// Waits until a stdout line starts with `prefix`.
    pub fn wait_line(&self, prefix: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.starts_with(prefix))
            {
                return l.clone();
            }
            assert!(
                start.elapsed() < timeout,
                "no '{prefix}' line within {timeout:?}: {:?}",
                self.lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for exit; returns success.
    pub fn wait(&mut self) -> bool {
        self.child.wait().unwrap().success()
    }
}

impl Drop for ForwardProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
