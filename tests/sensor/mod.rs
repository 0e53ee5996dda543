//! Sensor integration tests.

mod cli;
mod et_open_pcaps;
mod live;
mod suricata_verify;
