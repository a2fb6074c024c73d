//! `vic-machine`: deploy and manage virtual container hosts; `vic-machine endpoint` serves one.

mod certs;
mod cli;
mod clients;
mod cnetworks;
mod commands;
mod config;
mod connect;
mod endpoint;
mod endpoint_log;
mod error;
mod host;
mod output;
mod ping;
mod process;
mod remote;
mod rotate;
mod subids;
mod systemd;
mod vsphere_flags;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{CertCommand, Cli, Command};
use crate::output::Out;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = Out::new();
    vic_pki::install_crypto_provider();
    if cli.remote.target.is_some() {
        return remote::run(cli, &mut out);
    }
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
        Command::Cert(CertCommand::Record(args)) => {
            ("cert record", commands::cert::record(args, &mut out))
        }
        Command::Start(args) => ("start", commands::lifecycle::start(args, &mut out)),
        Command::Stop(args) => ("stop", commands::lifecycle::stop(args, &mut out)),
        Command::Restart(args) => ("restart", commands::lifecycle::restart(args, &mut out)),
        Command::Delete(args) => ("delete", commands::delete::run(args, &mut out)),
        Command::Version => {
            out.info(format!("vic-machine version {}", vic_core::short_version()));
            ("version", Ok(()))
        }
        Command::Completion(args) => ("completion", completion(args.shell)),
        Command::Logs(args) => ("logs", commands::logs::run(args)),
        Command::Metrics(cmd) => commands::metrics::run(cmd, &mut out),
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

/// Prints the completion script. Generated into memory first: clap_complete panics on a
/// failed write (a closed pipe), where this reports it.
fn completion(shell: clap_complete::Shell) -> error::Result<()> {
    use std::io::Write;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "vic-machine", &mut script);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&script)
        .and_then(|()| stdout.flush())
        .map_err(|e| error::Error::Failed(format!("cannot write the completion script: {e}")))
}
