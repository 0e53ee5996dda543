//! `tocsin`: the one binary. Subcommands start a sensor, a correlator, or manage rules,
//! tokens and agencies. `anyhow` lives here; the libraries return typed errors.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cli::init_logging(cli.log_level.as_deref(), cli.log_json);
    match cli::run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            // `{:#}` prints the whole context chain on one line: "loading rules: a.rules: ...".
            eprintln!("tocsin: error: {err:#}");
            ExitCode::from(1)
        }
    }
}
