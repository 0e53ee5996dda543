//! `tocsin sensor`.

use std::process::ExitCode;

/// Arguments of `tocsin sensor`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the sensor.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the sensor is not built yet")
}
