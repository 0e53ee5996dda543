//! Sensor configuration.
