//! Wiring: bind the listener, bring the schema up (retrying while ClickHouse is away),
//! restore open incidents, start the writer, retention and the HTTP server; shut down on a
//! cancellation token with a grace period.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::agency::DirHandle;
use crate::api::{self, AppState};
use crate::audit::{self, AuditSink};
use crate::auth::Authenticator;
use crate::config::{ConfigError, CorrelatorConfig};
use crate::correlate::{CorrelationEngine, RulesError, load_rules};
use crate::dedup::DedupEngine;
use crate::metrics::Metrics;
use crate::store::{ClickHouse, StoreError, agencies, retention, schema};
use crate::tickets::{TicketLocks, worker};
use crate::writer::{Writer, WriterHandle, writer};

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Bad correlation rules.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// Store setup.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// TLS setup.
    #[error(transparent)]
    Tls(#[from] api::tls::TlsError),
    /// Listener or server I/O.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

/// A bound, not yet running correlator.
#[derive(Debug)]
pub struct Correlator {
    cfg: CorrelatorConfig,
    listener: std::net::TcpListener,
    ch: ClickHouse,
    rules: Vec<crate::correlate::Rule>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Correlator {
    /// Validates the config, loads the rules and TLS material, and binds the listener.
    ///
    /// # Errors
    /// [`ServiceError`].
    pub fn bind(cfg: CorrelatorConfig) -> Result<Self, ServiceError> {
        cfg.validate()?;
        let rules = match &cfg.correlation.rules_file {
            Some(p) => load_rules(p)?,
            None => Vec::new(),
        };
        let tls = if cfg.tls.cert.is_some() {
            Some(api::tls::server_config(&cfg.tls)?)
        } else {
            None
        };
        let ch = ClickHouse::new(&cfg.clickhouse)?;
        let listener =
            std::net::TcpListener::bind(cfg.listen).map_err(|source| ServiceError::Io {
                context: format!("binding {}", cfg.listen),
                source,
            })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| ServiceError::Io {
                context: "configuring the listener".into(),
                source,
            })?;
        Ok(Self {
            cfg,
            listener,
            ch,
            rules,
            tls,
        })
    }

    /// The bound address (useful with port 0).
    ///
    /// # Errors
    /// I/O error from the socket.
    pub fn local_addr(&self) -> Result<SocketAddr, ServiceError> {
        self.listener
            .local_addr()
            .map_err(|source| ServiceError::Io {
                context: "reading the bound address".into(),
                source,
            })
    }

    /// Serves until `shutdown` is cancelled, then drains within `shutdown_grace`.
    ///
    /// # Errors
    /// [`ServiceError::Io`] when the server fails.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ServiceError> {
        let Self {
            cfg,
            listener,
            ch,
            rules,
            tls,
        } = self;
        let metrics = Arc::new(Metrics::default());
        let ready = Arc::new(AtomicBool::new(false));
        let dir = DirHandle::default();
        let (audit, audit_rx) = AuditSink::new();
        let locks = Arc::new(TicketLocks::default());
        let background = CancellationToken::new();
        let writer_cell: Arc<tokio::sync::OnceCell<WriterHandle>> =
            Arc::new(tokio::sync::OnceCell::new());
        let state = AppState {
            auth: Arc::new(Authenticator::new(ch.clone())),
            writer: writer_cell.clone(),
            ch: ch.clone(),
            ingest: Arc::new(cfg.ingest.clone()),
            metrics: metrics.clone(),
            ready: ready.clone(),
            dir: dir.clone(),
            audit,
            locks: locks.clone(),
        };
        let app = api::router(state);
        let rule_count = rules.len();
        // Background: schema, restore, writer, retention.
        let writer_stop = CancellationToken::new();
        let init = {
            let (ch, cfg, metrics, ready, writer_stop, shutdown, dir, background) = (
                ch.clone(),
                cfg.clone(),
                metrics.clone(),
                ready.clone(),
                writer_stop.clone(),
                shutdown.clone(),
                dir.clone(),
                background.clone(),
            );
            tokio::spawn(async move {
                let Some((w, handle)) =
                    init_store(&ch, &cfg, rules, metrics.clone(), &dir, &shutdown).await
                else {
                    return;
                };
                let _ = writer_cell.set(handle);
                ready.store(true, Ordering::Relaxed);
                tracing::info!(rules = rule_count, "schema ready; accepting alerts");
                let mut tasks = tokio::task::JoinSet::new();
                tasks.spawn(retention_loop(ch.clone(), cfg.clone(), shutdown.clone()));
                tasks.spawn(audit::run_writer(ch.clone(), audit_rx, background.clone()));
                tasks.spawn(worker::refresh_directory(
                    ch.clone(),
                    dir.clone(),
                    cfg.tickets.directory_refresh,
                    background.clone(),
                ));
                tasks.spawn(worker::refresh_gauges(
                    ch.clone(),
                    metrics.clone(),
                    cfg.tickets.metrics_refresh,
                    background.clone(),
                ));
                if cfg.tickets.enabled {
                    let holder = format!(
                        "{}:{}:{}",
                        std::env::var("HOSTNAME").unwrap_or_default(),
                        std::process::id(),
                        uuid::Uuid::new_v4().simple()
                    );
                    match worker::Worker::new(
                        ch.clone(),
                        dir.clone(),
                        cfg.tickets.clone(),
                        cfg.webhooks.clone(),
                        metrics.clone(),
                        locks,
                        &holder,
                    ) {
                        Ok(wk) => {
                            tasks.spawn(wk.run(background.clone()));
                        }
                        Err(e) => tracing::error!(error = %e, "ticket worker not started"),
                    }
                }
                w.run(writer_stop).await;
                background.cancel();
                while tasks.join_next().await.is_some() {}
            })
        };
        let addr = listener.local_addr().ok();
        let grace = cfg.shutdown_grace;
        let served = match tls {
            Some(tls) => {
                tracing::info!(?addr, "correlator listening (HTTPS)");
                let handle = axum_server::Handle::new();
                let h2 = handle.clone();
                let sd = shutdown.clone();
                tokio::spawn(async move {
                    sd.cancelled().await;
                    h2.graceful_shutdown(Some(grace));
                });
                axum_server::from_tcp_rustls(
                    listener,
                    axum_server::tls_rustls::RustlsConfig::from_config(tls),
                )
                .map_err(|source| ServiceError::Io {
                    context: "starting the HTTPS server".into(),
                    source,
                })?
                .handle(handle)
                .serve(app.into_make_service())
                .await
            }
            None => {
                tracing::info!(?addr, "correlator listening (plain HTTP)");
                let listener = tokio::net::TcpListener::from_std(listener).map_err(|source| {
                    ServiceError::Io {
                        context: "registering the listener".into(),
                        source,
                    }
                })?;
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                    .await
            }
        };
        // The server has stopped taking requests; let the writer finish what is queued, then
        // the background tasks (audit flush, lease release).
        writer_stop.cancel();
        if tokio::time::timeout(grace, init).await.is_err() {
            tracing::warn!(?grace, "writer did not drain within the grace period");
        }
        served.map_err(|source| ServiceError::Io {
            context: "serving".into(),
            source,
        })
    }
}

/// Migrates (retrying with backoff until ClickHouse answers or shutdown), restores open
/// incidents, builds the writer.
async fn init_store(
    ch: &ClickHouse,
    cfg: &CorrelatorConfig,
    rules: Vec<crate::correlate::Rule>,
    metrics: Arc<Metrics>,
    dir: &DirHandle,
    shutdown: &CancellationToken,
) -> Option<(Writer, WriterHandle)> {
    let mut delay = Duration::from_millis(200);
    let version = loop {
        let attempt = async {
            let v = ch.version().await?;
            let applied = schema::migrate(ch).await?;
            let ttl =
                schema::apply_ttl(ch, v, cfg.retention.alerts_days, cfg.retention.rollup_days)
                    .await?;
            tracing::info!(server = %v, ?applied, ttl, database = ch.database(), "ClickHouse schema up to date");
            Ok::<_, StoreError>(v)
        };
        match attempt.await {
            Ok(v) => break v,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "ClickHouse not ready");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shutdown.cancelled() => return None,
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    };
    let _ = version;
    match agencies::load(ch).await {
        Ok(d) => {
            tracing::info!(
                agencies = d.len(),
                version = d.version,
                "agency directory loaded"
            );
            dir.set(d);
        }
        Err(e) => {
            tracing::warn!(error = %e, "no agency directory yet; incidents belong to the sensors' agencies");
        }
    }
    let mut dedup = DedupEngine::new(&cfg.dedup);
    let horizon = cfg
        .dedup
        .overrides
        .iter()
        .filter_map(|o| o.window)
        .chain([cfg.dedup.window])
        .max()
        .unwrap_or(cfg.dedup.window)
        + Duration::from_secs(60);
    let now_us =
        i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000).unwrap_or(0);
    match ch
        .recent_open_incidents(i64::try_from(horizon.as_secs()).unwrap_or(i64::MAX))
        .await
    {
        Ok(rows) => {
            let n = dedup.restore(&rows, now_us);
            tracing::info!(restored = n, "open incidents restored");
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not restore open incidents; new alerts open new ones");
        }
    }
    metrics.clickhouse_up.store(1, Ordering::Relaxed);
    let correlate = CorrelationEngine::new(rules, cfg.dedup.max_set);
    Some(writer(
        ch.clone(),
        dedup,
        correlate,
        &cfg.ingest,
        (dir.clone(), &cfg.ownership),
        metrics,
    ))
}

async fn retention_loop(ch: ClickHouse, cfg: CorrelatorConfig, shutdown: CancellationToken) {
    let Ok(v) = ch.version().await else { return };
    if v.has_ttl() || (cfg.retention.alerts_days == 0 && cfg.retention.rollup_days == 0) {
        return; // the server expires rows itself (TTL), or nothing expires.
    }
    let mut tick = tokio::time::interval(cfg.retention.check_interval.max(Duration::from_secs(1)));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Err(e) = retention::drop_expired(
            &ch,
            now,
            cfg.retention.alerts_days,
            cfg.retention.rollup_days,
        )
        .await
        {
            tracing::warn!(error = %e, "retention pass failed");
        }
    }
}
