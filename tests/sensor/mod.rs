//! Sensor integration tests.
