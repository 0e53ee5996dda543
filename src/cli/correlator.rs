//! `tocsin correlator`: not yet built.

use std::process::ExitCode;

/// Arguments of `tocsin correlator`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Subcommands of `tocsin correlator`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Placeholder.
    Placeholder(Args),
}

/// Runs the correlator.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the correlator is not built yet")
}
