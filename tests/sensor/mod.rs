//! Sensor integration tests.

mod cli;
mod et_open_pcaps;
mod suricata_verify;
