//! Helpers shared by the integration tests.

#![allow(dead_code, reason = "each test module uses a different subset")]

use std::path::{Path, PathBuf};

/// Path to the `tocsin` binary built for this test run.
pub fn tocsin_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tocsin"))
}

/// The shared test data (`../shared/testdata` next to the repo), or `None` with a message on
/// stderr when it is absent (tests then skip with that message).
pub fn shared_testdata() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP: {} is absent; tests over shared data are skipped",
            dir.display()
        );
        None
    }
}
