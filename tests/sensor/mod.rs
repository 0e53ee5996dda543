//! Sensor integration tests.

mod et_open_pcaps;
mod suricata_verify;
