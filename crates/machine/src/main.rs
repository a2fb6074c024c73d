//! `vic-machine`: deploy and manage virtual container hosts; `vic-machine endpoint` serves one.

mod certs;
mod cli;
mod clients;
mod cnetworks;
mod commands;
mod config;
mod connect;
mod endpoint;
mod error;
mod host;
mod output;
mod ping;
mod process;
mod rotate;
mod subids;
mod systemd;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{CertCommand, Cli, Command};
use crate::output::Out;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = Out::new();
    vic_pki::install_crypto_provider();
    let (name, result) = match cli.command {
        Command::Create(args) => ("create", commands::create::run(*args, &mut out)),
        Command::Ls(args) => ("ls", commands::ls::run(args, &mut out)),
        Command::Inspect(args) => ("inspect", commands::inspect::run(args, &mut out)),
        Command::Configure(args) => ("configure", commands::configure::run(args, &mut out)),
        Command::Cert(CertCommand::Issue(args)) => {
            ("cert issue", commands::cert::issue(args, &mut out))
        }
        Command::Cert(CertCommand::Ls(args)) => ("cert ls", commands::cert::ls(args, &mut out)),
        Command::Cert(CertCommand::Revoke(args)) => {
            ("cert revoke", commands::cert::revoke(args, &mut out))
        }
        Command::Start(args) => ("start", commands::lifecycle::start(args, &mut out)),
        Command::Stop(args) => ("stop", commands::lifecycle::stop(args, &mut out)),
        Command::Restart(args) => ("restart", commands::lifecycle::restart(args, &mut out)),
        Command::Delete(args) => ("delete", commands::delete::run(args, &mut out)),
        Command::Version => {
            out.info(format!("vic-machine version {}", vic_core::short_version()));
            ("version", Ok(()))
        }
        Command::Endpoint(args) => ("endpoint", endpoint::run(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            out.failure(name, &e);
            ExitCode::from(1)
        }
    }
}
