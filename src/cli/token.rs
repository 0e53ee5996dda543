//! `tocsin token`: not yet built.

use std::process::ExitCode;

/// Arguments of `tocsin token`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Subcommands of `tocsin token`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Placeholder.
    Placeholder(Args),
}

/// Runs a token subcommand.
pub fn run(_cmd: Command) -> anyhow::Result<ExitCode> {
    anyhow::bail!("token management is not built yet")
}
