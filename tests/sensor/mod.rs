//! Sensor integration tests.

mod suricata_verify;
