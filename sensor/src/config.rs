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
#[derive(Debug, Clone, Default, Deserialize)]
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
}

impl Default for DetectConfig {
    fn default() -> Self {
        Self {
            packet_alert_max: 15,
            threshold_max_entries: 1 << 20,
            prefilter: crate::detect::prefilter::Backend::Auto,
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
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(toml::from_str::<SensorConfig>("[sensor]\nidd = \"x\"\n").is_err());
        let cfg: SensorConfig = toml::from_str("[vars.port]\nHTTP_PORTS = \"[80,\"\n").unwrap();
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("vars.port.HTTP_PORTS"), "{err}");
    }
}
