//! `tocsin rules`.

use std::process::ExitCode;

/// Subcommands of `tocsin rules`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Placeholder.
    Check,
}

/// Runs a rules subcommand.
pub fn run(_cmd: Command) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
