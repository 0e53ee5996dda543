//! Sensor configuration: one TOML file (`tocsin.toml`), every field optional.
//!
//! Defaults reproduce Suricata 7's shipped suricata.yaml where Suricata has an equivalent
//! (rule variables, classification, flow timeouts), so rulesets and suricata-verify tests
//! run unchanged without a config. Unknown keys are errors, so typos do not pass silently.
//!
//! ```toml
//! [sensor]
//! id = "hq-tap-1"
//! agency = "MIC.DEPT-3"
//!
//! [vars.address]
//! HOME_NET = "[10.0.0.0/8]"
//!
//! [vars.port]
//! HTTP_PORTS = "[80,8080]"
//!
//! [capture]              # live capture (`tocsin sensor -i IFACE`)
//! snaplen = 262144
//! buffer_bytes = 268435456
//! bpf_filter = "not port 22"
//! promiscuous = true
//!
//! [stats]
//! interval = "30s"       # periodic `stats` EVE records; "0s" turns them off
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::applayer::AppLayerConfig;
use crate::defrag::DefragConfig;
use crate::detect::rule::Vars;
use crate::detect::rule::address::parse_address;
use crate::detect::rule::classification::Classifications;
use crate::detect::rule::port::parse_ports;
use crate::flow::FlowConfig;
use crate::output::forward::ForwardConfig;
use crate::reassembly::ReassemblyConfig;

/// The whole sensor configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensorConfig {
    /// Identity of this sensor.
    pub sensor: Identity,
    /// Rule variables (override or extend Suricata's defaults).
    pub vars: VarsConfig,
    /// Rule files loaded when `-S` is not given.
    pub rule_files: Vec<PathBuf>,
    /// classification.config to use instead of the embedded table.
    pub classification_file: Option<PathBuf>,
    /// Checksum validation: `auto` (off for pcap files, on for live capture), `all`, `none`.
    pub checksums: ChecksumMode,
    /// Flow table.
    pub flow: FlowConfig,
    /// IP defragmentation.
    pub defrag: DefragConfig,
    /// TCP stream reassembly.
    pub stream: ReassemblyConfig,
    /// Application-layer detection and parsers.
    pub app_layer: AppLayerConfig,
    /// Detection engine.
    pub detect: DetectConfig,
    /// Forwarding to the correlator (off without a URL).
    pub forward: Option<ForwardConfig>,
    /// Worker threads for offline runs and live capture; 0 = one per CPU core.
    pub workers: usize,
    /// Live capture (`[capture]`): interface, snaplen, kernel buffer, BPF filter.
    pub capture: crate::capture::live::LiveConfig,
    /// Batches (of up to 64 packets) queued per worker in live mode before the capture
    /// thread drops and counts them.
    pub queue_batches: usize,
    /// Statistics (`[stats]`).
    pub stats: StatsConfig,
}

/// `[stats]`: periodic `stats` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatsConfig {
    /// Period of `stats` records in live mode: `"30s"`, `"500ms"`, `"5m"`, `"1h"`, or a
    /// number of seconds. Zero turns periodic records off (the final one is always written).
    #[serde(deserialize_with = "de_interval")]
    pub interval: std::time::Duration,
}

impl Default for StatsConfig {
    fn default() -> Self {
        Self {
            interval: std::time::Duration::from_secs(30),
        }
    }
}

/// Shortest accepted stats period (0 = off).
pub const MIN_STATS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// Parses a period: an unsigned integer followed by `ms`, `s`, `m` or `h` (`"30s"`), or a
/// bare integer meaning seconds. At most one day.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    use std::time::Duration;
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("'{text}' is not a period (examples: \"30s\", \"500ms\", \"5m\", \"1h\")");
    let n: u64 = num.parse().map_err(|_| bad())?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(bad()),
    };
    if d > Duration::from_secs(86_400) {
        return Err(format!("'{text}' is longer than a day"));
    }
    Ok(d)
}

fn de_interval<'de, D: serde::Deserializer<'de>>(de: D) -> Result<std::time::Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    match Raw::deserialize(de)? {
        Raw::Secs(n) => parse_interval(&n.to_string()),
        Raw::Text(t) => parse_interval(&t),
    }
    .map_err(serde::de::Error::custom)
}

impl Default for SensorConfig {
    fn default() -> Self {
        Self {
            sensor: Identity::default(),
            vars: VarsConfig::default(),
            rule_files: Vec::new(),
            classification_file: None,
            checksums: ChecksumMode::default(),
            flow: FlowConfig::default(),
            defrag: DefragConfig::default(),
            stream: ReassemblyConfig::default(),
            app_layer: AppLayerConfig::default(),
            detect: DetectConfig::default(),
            forward: None,
            workers: 0,
            capture: crate::capture::live::LiveConfig::default(),
            queue_batches: 64,
            stats: StatsConfig::default(),
        }
    }
}

/// Who this sensor is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Identity {
    /// Sensor ID, written to every alert's `sensor.id` and `alert_id`.
    pub id: String,
    /// Agency code that owns this sensor (`sensor.agency`).
    pub agency: String,
}

impl Default for Identity {
    fn default() -> Self {
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "sensor".to_owned());
        Self {
            id: host,
            agency: String::new(),
        }
    }
}

/// `[vars]`: address and port groups.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VarsConfig {
    /// `[vars.address]`: `HOME_NET = "[10.0.0.0/8]"`.
    pub address: BTreeMap<String, String>,
    /// `[vars.port]`: `HTTP_PORTS = "[80,8080]"`.
    pub port: BTreeMap<String, String>,
}

/// Checksum validation mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChecksumMode {
    /// Off for pcap files, on for live capture (Suricata's `checksum-checks: auto`, close).
    #[default]
    Auto,
    /// Validate: packets with bad checksums are not inspected.
    All,
    /// Never validate.
    None,
}

/// `[detect]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Most alerts logged for one packet (Suricata's `packet-alert-max`, default 15).
    pub packet_alert_max: usize,
    /// Upper bound on hosts tracked by `threshold`/`detection_filter` (memory cap).
    pub threshold_max_entries: usize,
    /// Prefilter backend: `"auto"` (Hyperscan where compiled in, else aho-corasick),
    /// `"hyperscan"` (fail if unavailable) or `"aho-corasick"`. Alerts are the same.
    pub prefilter: crate::detect::prefilter::Backend,
    /// Threads that compile prefilter databases at rule load (0: one per core). More
    /// threads load a big ruleset faster but raise the peak memory of loading (each
    /// Hyperscan compile holds its own working set).
    pub build_threads: usize,
}

impl Default for DetectConfig {
    fn default() -> Self {
        Self {
            packet_alert_max: 15,
            threshold_max_entries: 1 << 20,
            prefilter: crate::detect::prefilter::Backend::Auto,
            build_threads: 0,
        }
    }
}

/// A config problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Cannot read the file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML for this schema (unknown key, wrong type).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML parser's message, with line and column.
        message: String,
    },
    /// A value is invalid.
    #[error("config: {0}")]
    Invalid(String),
}

impl SensorConfig {
    /// Reads and validates a TOML config file.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and, for syntax errors, the line.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let cfg: Self = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values that the schema cannot (variable expressions, limits).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] describing the first bad value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.sensor.id.is_empty() || self.sensor.id.contains(':') {
            return Err(ConfigError::Invalid(
                "sensor.id must be non-empty and must not contain ':'".into(),
            ));
        }
        if self.flow.max_flows == 0 {
            return Err(ConfigError::Invalid(
                "flow.max_flows must be at least 1".into(),
            ));
        }
        if !(1..=65_536).contains(&self.queue_batches) {
            return Err(ConfigError::Invalid(format!(
                "queue_batches {} is outside 1..=65536",
                self.queue_batches
            )));
        }
        if !self.stats.interval.is_zero() && self.stats.interval < MIN_STATS_INTERVAL {
            return Err(ConfigError::Invalid(format!(
                "stats.interval {:?} is shorter than {MIN_STATS_INTERVAL:?} (0 turns it off)",
                self.stats.interval
            )));
        }
        // The interface may come from `-i`; everything else is checked here.
        if self.capture.interface.is_empty() {
            let probe = crate::capture::live::LiveConfig {
                interface: "probe".into(),
                ..self.capture.clone()
            };
            probe
                .validate()
                .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        } else {
            self.capture
                .validate()
                .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        }
        self.rule_vars()?;
        Ok(())
    }

    /// Rule variables: Suricata's defaults overlaid with `[vars]`, each checked to resolve.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when a variable does not parse.
    pub fn rule_vars(&self) -> Result<Vars, ConfigError> {
        let mut vars = Vars::suricata_defaults();
        for (k, v) in &self.vars.address {
            vars.set_address(k, v);
        }
        for (k, v) in &self.vars.port {
            vars.set_port(k, v);
        }
        for k in self.vars.address.keys() {
            parse_address(&format!("${k}"), &vars)
                .map_err(|e| ConfigError::Invalid(format!("vars.address.{k}: {e}")))?;
        }
        for k in self.vars.port.keys() {
            parse_ports(&format!("${k}"), &vars)
                .map_err(|e| ConfigError::Invalid(format!("vars.port.{k}: {e}")))?;
        }
        Ok(vars)
    }

    /// The classification table: the configured file or the embedded default.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when the configured file is unreadable or malformed.
    pub fn classifications(&self) -> Result<Classifications, ConfigError> {
        match &self.classification_file {
            Some(p) => Classifications::load(p).map_err(|e| ConfigError::Invalid(e.to_string())),
            None => Ok(Classifications::builtin()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_overrides_vars() {
        let cfg: SensorConfig = toml::from_str(
            "[sensor]\nid = \"s1\"\nagency = \"MIC\"\n[vars.address]\nHOME_NET = \"[10.0.0.0/8]\"\n",
        )
        .unwrap();
        cfg.validate().unwrap();
        let vars = cfg.rule_vars().unwrap();
        assert_eq!(vars.address("HOME_NET"), Some("[10.0.0.0/8]"));
        assert_eq!(vars.port("HTTP_PORTS"), Some("80"));
    }

    #[test]
    fn capture_and_stats_sections() {
        let cfg: SensorConfig = toml::from_str(
            "queue_batches = 8\n[capture]\ninterface = \"eth1\"\nsnaplen = 1518\nbpf_filter = \"tcp\"\n\
             promiscuous = false\nbuffer_bytes = 1048576\n[stats]\ninterval = \"2s\"\n",
        )
        .unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.capture.interface, "eth1");
        assert_eq!(cfg.capture.snaplen, 1518);
        assert!(!cfg.capture.promiscuous);
        assert_eq!(cfg.capture.buffer_bytes, 1 << 20);
        assert_eq!(cfg.queue_batches, 8);
        assert_eq!(cfg.stats.interval, std::time::Duration::from_secs(2));
        // Defaults: 30 s stats, 64-batch queues, Suricata-like capture settings.
        let d = SensorConfig::default();
        assert_eq!(d.stats.interval, std::time::Duration::from_secs(30));
        assert_eq!(d.queue_batches, 64);
        d.validate().unwrap();
        let secs: SensorConfig = toml::from_str("[stats]\ninterval = 15\n").unwrap();
        assert_eq!(secs.stats.interval, std::time::Duration::from_secs(15));
        for (text, want) in [
            ("[stats]\ninterval = \"30 parsecs\"\n", "not a period"),
            ("[stats]\ninterval = \"2d\"\n", "not a period"),
            ("[stats]\ninterval = \"25h\"\n", "longer than a day"),
            ("[capture]\nsnap = 5\n", "snap"),
        ] {
            let err = toml::from_str::<SensorConfig>(text)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
        let short: SensorConfig = toml::from_str("[stats]\ninterval = \"10ms\"\n").unwrap();
        assert!(
            short
                .validate()
                .unwrap_err()
                .to_string()
                .contains("shorter")
        );
        let off: SensorConfig = toml::from_str("[stats]\ninterval = \"0s\"\n").unwrap();
        off.validate().unwrap();
        let snap: SensorConfig = toml::from_str("[capture]\nsnaplen = 64\n").unwrap();
        assert!(
            snap.validate()
                .unwrap_err()
                .to_string()
                .contains("snaplen 64")
        );
        assert_eq!(
            parse_interval("500ms"),
            Ok(std::time::Duration::from_millis(500))
        );
        assert_eq!(
            parse_interval("5m"),
            Ok(std::time::Duration::from_secs(300))
        );
        assert_eq!(
            parse_interval("1h"),
            Ok(std::time::Duration::from_secs(3600))
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(toml::from_str::<SensorConfig>("[sensor]\nidd = \"x\"\n").is_err());
        let cfg: SensorConfig = toml::from_str("[vars.port]\nHTTP_PORTS = \"[80,\"\n").unwrap();
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("vars.port.HTTP_PORTS"), "{err}");
    }
}
