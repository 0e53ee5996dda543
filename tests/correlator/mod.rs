//! Correlator integration tests.
