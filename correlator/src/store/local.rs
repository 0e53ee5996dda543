//! A private ClickHouse server for tests, benches and the demo: Debian's
//! `/usr/sbin/clickhouse-server` started from its own directory on free loopback ports.
//!
//! The directory holds `config.xml`, `users.xml` (user `default`, no password, loopback
//! only), `data/`, `tmp/` and `log/`. [`LocalClickHouse::stop`] and
//! [`LocalClickHouse::start`] restart the same server on the same data and ports (fault
//! tests); dropping the handle stops the server (SIGTERM, then SIGKILL after 10 s) and
//! removes the directory when it was a temporary one.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Default server binary.
pub const DEFAULT_SERVER_BIN: &str = "/usr/sbin/clickhouse-server";

/// Why the local server could not start or stop.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// Filesystem or process error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// The server did not answer `/ping` in time.
    #[error("clickhouse-server did not become ready within {waited:?}; see {log}")]
    NotReady {
        /// How long we waited.
        waited: Duration,
        /// Its error log.
        log: String,
    },
    /// The server exited during startup.
    #[error("clickhouse-server exited during startup ({status}); see {log}")]
    Exited {
        /// Exit status.
        status: String,
        /// Its error log.
        log: String,
    },
}

/// Options for [`LocalClickHouse::start_in`].
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Server binary.
    pub server_bin: PathBuf,
    /// HTTP port (0: pick a free one).
    pub http_port: u16,
    /// Native TCP port (0: pick a free one).
    pub tcp_port: u16,
    /// How long to wait for readiness.
    pub ready_timeout: Duration,
    /// Stop the server when this process ID exits, even if the handle is never dropped
    /// (a `static` in a test binary): a small `sh` watchdog polls it every second.
    pub stop_with_pid: Option<u32>,
}

impl Default for LocalOptions {
    fn default() -> Self {
        Self {
            server_bin: PathBuf::from(DEFAULT_SERVER_BIN),
            http_port: 0,
            tcp_port: 0,
            ready_timeout: Duration::from_secs(30),
            stop_with_pid: None,
        }
    }
}

/// A running (or stopped) private ClickHouse server.
#[derive(Debug)]
pub struct LocalClickHouse {
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    opts: LocalOptions,
    child: Option<Child>,
    watchdog: Option<Child>,
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> LocalError {
    let context = context.into();
    move |source| LocalError::Io { context, source }
}

fn free_port() -> Result<u16, LocalError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(io("binding a probe port"))?;
    Ok(l.local_addr().map_err(io("reading the probe port"))?.port())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl LocalClickHouse {
    /// Starts a server in a new temporary directory (removed on drop).
    ///
    /// # Errors
    /// [`LocalError`].
    pub fn start_temp() -> Result<Self, LocalError> {
        let temp = tempfile::Builder::new()
            .prefix("tocsin-ch-")
            .tempdir()
            .map_err(io("creating a temporary directory"))?;
        let dir = temp.path().to_owned();
        let mut me = Self::start_in(&dir, LocalOptions::default())?;
        me._temp = Some(temp);
        Ok(me)
    }

    /// Starts a server whose files live in `dir` (created if missing, kept on drop). An
    /// existing `config.xml` there is rewritten with the chosen ports.
    ///
    /// # Errors
    /// [`LocalError`].
    pub fn start_in(dir: &Path, mut opts: LocalOptions) -> Result<Self, LocalError> {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        let dir = dir
            .canonicalize()
            .map_err(io(format!("resolving {}", dir.display())))?;
        if opts.http_port == 0 {
            opts.http_port = free_port()?;
        }
        if opts.tcp_port == 0 {
            loop {
                let p = free_port()?;
                if p != opts.http_port {
                    opts.tcp_port = p;
                    break;
                }
            }
        }
        let mut me = Self {
            dir,
            _temp: None,
            opts,
            child: None,
            watchdog: None,
        };
        me.write_config()?;
        me.start()?;
        Ok(me)
    }

    fn write_config(&self) -> Result<(), LocalError> {
        let d = xml_escape(&self.dir.display().to_string());
        for sub in ["data", "tmp", "log", "user_files", "format_schemas"] {
            std::fs::create_dir_all(self.dir.join(sub)).map_err(io(format!("creating {sub}/")))?;
        }
        let config = format!(
            r#"<?xml version="1.0"?>
<!-- Written by tocsin (store::local): a private server for tests and the demo. -->
<yandex>
  <logger>
    <level>warning</level>
    <log>{d}/log/server.log</log>
    <errorlog>{d}/log/error.log</errorlog>
    <size>10M</size>
    <count>2</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <users_config>{d}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
"#,
            http = self.opts.http_port,
            tcp = self.opts.tcp_port,
        );
        let users = r#"<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
  </interval></default></quotas>
</yandex>
"#;
        std::fs::write(self.dir.join("config.xml"), config).map_err(io("writing config.xml"))?;
        std::fs::write(self.dir.join("users.xml"), users).map_err(io("writing users.xml"))?;
        Ok(())
    }

    /// Starts the server process (again) and waits until `/ping` answers.
    ///
    /// # Errors
    /// [`LocalError`].
    pub fn start(&mut self) -> Result<(), LocalError> {
        if self.child.is_some() {
            return Ok(());
        }
        let stdout = std::fs::File::create(self.dir.join("log/stdout.log"))
            .map_err(io("creating log/stdout.log"))?;
        let stderr = stdout.try_clone().map_err(io("cloning the log handle"))?;
        let child = Command::new(&self.opts.server_bin)
            .arg(format!(
                "--config-file={}",
                self.dir.join("config.xml").display()
            ))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(io(format!("starting {}", self.opts.server_bin.display())))?;
        let ch_pid = child.id();
        self.child = Some(child);
        if let Some(parent) = self.opts.stop_with_pid {
            let script = format!(
                "while kill -0 {parent} 2>/dev/null; do sleep 1; done; \
                 kill -TERM {ch_pid} 2>/dev/null; sleep 10; kill -KILL {ch_pid} 2>/dev/null"
            );
            let dog = Command::new("sh")
                .arg("-c")
                .arg(script)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(io("starting the watchdog"))?;
            self.watchdog = Some(dog);
        }
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), LocalError> {
        let start = Instant::now();
        let log = self.dir.join("log/error.log").display().to_string();
        loop {
            if self.ping() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(LocalError::Exited {
                    status: status.to_string(),
                    log,
                });
            }
            if start.elapsed() > self.opts.ready_timeout {
                return Err(LocalError::NotReady {
                    waited: start.elapsed(),
                    log,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether `/ping` answers `Ok.` right now (plain blocking HTTP/1.0 over TCP).
    #[must_use]
    pub fn ping(&self) -> bool {
        use std::io::{Read, Write};
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.opts.http_port));
        let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200))
        else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        if s.write_all(b"GET /ping HTTP/1.0\r\n\r\n").is_err() {
            return false;
        }
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        buf.windows(3).any(|w| w == b"Ok.")
    }

    /// Stops the server (SIGTERM, SIGKILL after 10 s); data stays for [`Self::start`].
    pub fn stop(&mut self) {
        self.stop_watchdog();
        let Some(mut child) = self.child.take() else {
            return;
        };
        // std has no SIGTERM; `kill` is in every base system.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    fn stop_watchdog(&mut self) {
        if let Some(mut dog) = self.watchdog.take() {
            let _ = dog.kill();
            let _ = dog.wait();
        }
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        self.stop_watchdog();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process is running.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.opts.http_port)
    }

    /// HTTP port.
    #[must_use]
    pub fn http_port(&self) -> u16 {
        self.opts.http_port
    }

    /// Native TCP port (for `clickhouse-client --port`).
    #[must_use]
    pub fn tcp_port(&self) -> u16 {
        self.opts.tcp_port
    }

    /// The server's directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Process ID while running.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits for the server process to exit by itself (used by `tocsin clickhouse serve`).
    ///
    /// # Errors
    /// [`LocalError::Io`].
    pub fn wait(&mut self) -> Result<std::process::ExitStatus, LocalError> {
        match self.child.as_mut() {
            Some(c) => {
                let st = c.wait().map_err(io("waiting for clickhouse-server"))?;
                self.child = None;
                Ok(st)
            }
            None => Err(LocalError::Io {
                context: "waiting".into(),
                source: std::io::Error::other("server is not running"),
            }),
        }
    }
}

impl Drop for LocalClickHouse {
    fn drop(&mut self) {
        self.stop();
    }
}
