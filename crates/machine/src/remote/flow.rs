//! `vic-machine ... --target ssh://[user@]host[:port]`: the VCH lives on another host, reached
//! over SSH with its host key verified (by `--thumbprint` or the user's `known_hosts`), as VIC
//! reached a vCenter Server it trusted by thumbprint.
//!
//! The target runs this very vic-machine (installed or updated over the same connection) and
//! does everything that touches its host. What is secret to the administrator stays here: the
//! certificate folder with the CA key is on this machine; certificates are signed here and only
//! the server certificate with its key and the client CAs go to the target. So `create`,
//! `configure` (certificate changes) and `cert issue` do their certificate work here and send
//! the result; every other command runs on the target as given.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, CommandFactory};

use super::ssh::{Session, Target};
use crate::cli::{CertCommand, Cli, Command};
use crate::error::{Error, Result};
use crate::output::Out;

/// The flags that send a command to another host (global: any command takes them).
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct RemoteArgs {
    /// Manage VCHs on another host, over SSH: ssh://[user@]host[:port] (this host when absent)
    #[arg(
        long,
        short = 't',
        global = true,
        env = "VIC_MACHINE_TARGET",
        value_name = "ssh://[user@]host[:port]"
    )]
    pub(crate) target: Option<String>,
    /// SHA256 fingerprint of the target's SSH host key (`ssh-keygen -lf` prints it); without
    /// it the host must be in your known_hosts
    #[arg(
        long,
        global = true,
        env = "VIC_MACHINE_THUMBPRINT",
        value_name = "SHA256:..."
    )]
    pub(crate) thumbprint: Option<String>,
    /// Private key to log in to the target with (as ssh -i)
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) ssh_identity: Option<PathBuf>,
}

/// Where the target's files for one command wait (a private folder, removed when done).
pub(crate) struct Staging<'a> {
    session: &'a Session,
    pub(crate) dir: String,
}

impl<'a> Staging<'a> {
    pub(crate) fn new(session: &'a Session) -> Self {
        Self {
            session,
            dir: format!("/tmp/vic-staging-{}", vic_pki::random_hex(8)),
        }
    }

    /// Puts `bytes` on the target as `name` in the staging folder; returns its path there.
    pub(crate) fn put(&self, name: &str, bytes: &[u8], mode: u32) -> Result<String> {
        let path = format!("{}/{name}", self.dir);
        self.session.put(bytes, &path, mode)?;
        Ok(path)
    }

    /// Puts the certificates of the local file `local` on the target, re-encoded: only
    /// certificates go, whatever else the file holds (a key beside them stays here).
    pub(crate) fn put_certs(&self, name: &str, local: &Path) -> Result<String> {
        let certs = vic_pki::load_bundle(local)?.certs;
        if certs.is_empty() {
            return Err(Error::Usage(format!(
                "{} holds no certificate",
                local.display()
            )));
        }
        self.put(name, crate::certs::chain_pem(&certs).as_bytes(), 0o600)
    }

    /// Puts a server certificate and its key on the target, once checked here to belong
    /// together (so no other key, a CA's say, is ever sent as one).
    pub(crate) fn put_server_pair(
        &self,
        cert: &Path,
        key: Option<&Path>,
    ) -> Result<(String, String)> {
        let c = vic_pki::load_bundle(cert)?;
        let k = match key {
            Some(k) => vic_pki::load_bundle(k)?,
            None => vic_pki::load_bundle(cert)?,
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let checked = vic_pki::check_server_identity(&c, &k, &[], now)?;
        Ok((
            self.put(
                "server-cert.pem",
                crate::certs::chain_pem(&checked.chain).as_bytes(),
                0o600,
            )?,
            self.put(
                "server-key.pem",
                crate::certs::key_pem(&checked.key).as_bytes(),
                0o600,
            )?,
        ))
    }
}

impl Drop for Staging<'_> {
    fn drop(&mut self) {
        let _ = self.session.run(&["rm", "-rf", "--", &self.dir], None);
    }
}

/// Runs the command line on the target; returns the exit code to leave with.
pub(crate) fn run(cli: Cli, out: &mut Out) -> ExitCode {
    let argv: Vec<String> = match std::env::args_os()
        .map(|a| a.into_string())
        .collect::<std::result::Result<_, _>>()
    {
        Ok(a) => a,
        Err(bad) => {
            out.failure(
                "remote",
                &Error::Usage(format!(
                    "argument {bad:?} is not UTF-8: it cannot be sent to the target"
                )),
            );
            return ExitCode::from(1);
        }
    };
    let name = command_name(&cli.command);
    match run_on_target(cli, &argv, out) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            out.failure(name, &e);
            ExitCode::from(1)
        }
    }
}

fn command_name(cmd: &Command) -> &'static str {
    match cmd {
        Command::Create(_) => "create",
        Command::Configure(_) => "configure",
        Command::Cert(CertCommand::Issue(_)) => "cert issue",
        _ => "remote",
    }
}

fn run_on_target(cli: Cli, argv: &[String], out: &mut Out) -> Result<i32> {
    let remote = &cli.remote;
    let target: Target = remote
        .target
        .as_deref()
        .unwrap_or_default()
        .parse()
        .map_err(Error::Usage)?;
    match &cli.command {
        Command::Endpoint(_) | Command::Completion(_) => {
            return Err(Error::Usage(
                "this command runs on the machine it is given to: leave out --target".into(),
            ));
        }
        _ => {}
    }
    let session = Session::connect(
        &target,
        remote.thumbprint.as_deref(),
        remote.ssh_identity.as_deref(),
    )?;
    let vm = session.ensure_vic_machine(out)?;
    let mut args = without(argv, &global_spellings());
    args.remove(0);
    match cli.command {
        Command::Create(create) => super::create::run(&session, &vm, &create, args, out),
        Command::Configure(configure) => {
            super::configure::run(&session, &vm, &configure, args, out)
        }
        Command::Cert(CertCommand::Issue(issue)) => super::issue::run(&session, &vm, &issue, out),
        Command::Delete(delete) => {
            let code = passthrough(&session, &vm, &args)?;
            if code == 0 {
                super::record::forget(&target, &delete.vch.name);
            }
            Ok(code)
        }
        _ => passthrough(&session, &vm, &args),
    }
}

/// Runs `args` with the target's vic-machine, its output passed through.
pub(crate) fn passthrough(session: &Session, vm: &str, args: &[String]) -> Result<i32> {
    let mut full: Vec<&str> = vec![vm];
    full.extend(args.iter().map(String::as_str));
    session.run_inherit(&full)
}

/// Every way `--target`, `--thumbprint` and `--ssh-identity` can be written.
fn global_spellings() -> Vec<String> {
    let cmd = Cli::command();
    spellings_of(&cmd, &["target", "thumbprint", "ssh_identity"])
}

/// The spellings (`--long`, its aliases, `-s`) of the arguments `ids` of `cmd`.
pub(crate) fn spellings_of(cmd: &clap::Command, ids: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for arg in cmd
        .get_arguments()
        .filter(|a| ids.contains(&a.get_id().as_str()))
    {
        out.extend(arg.get_long().map(|l| format!("--{l}")));
        out.extend(
            arg.get_all_aliases()
                .into_iter()
                .flatten()
                .map(|l| format!("--{l}")),
        );
        out.extend(arg.get_short().map(|s| format!("-{s}")));
    }
    out
}

/// The spellings of `ids` in the subcommand `sub`.
pub(crate) fn sub_spellings(sub: &str, ids: &[&str]) -> Vec<String> {
    let cli = Cli::command();
    cli.find_subcommand(sub)
        .map(|c| spellings_of(c, ids))
        .unwrap_or_default()
}

/// `argv` without the options spelled `drop` (each taking a value: `--x v`, `--x=v`, `-xv`).
pub(crate) fn without(argv: &[String], drop: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        if a == "--" {
            out.extend(argv[i..].iter().cloned());
            break;
        }
        if drop.iter().any(|d| d == a) {
            i += 2;
            continue;
        }
        let attached = drop.iter().any(|d| {
            if d.starts_with("--") {
                a.strip_prefix(d.as_str())
                    .is_some_and(|r| r.starts_with('='))
            } else {
                !a.starts_with("--") && a.len() > d.len() && a.starts_with(d.as_str())
            }
        });
        if !attached {
            out.push(a.clone());
        }
        i += 1;
    }
    out
}

/// The target's record of VCH `name`, with the paths of this machine put in: the certificate
/// folder the administrator keeps here (`cert_path`).
pub(crate) fn remote_config(
    session: &Session,
    vm: &str,
    name: &str,
    cert_path: &Path,
) -> Result<crate::config::VchConfig> {
    let name = vic_core::VchName::new(name)?;
    let name = name.as_str();
    let inspect = session.run(&[vm, "inspect", "--name", name, "--format", "json"], None)?;
    if inspect.status != 0 {
        return Err(Error::Failed(format!(
            "VCH {name:?} not found on {}: {}",
            session.target(),
            inspect.stderr.trim()
        )));
    }
    let folder = serde_json::from_str::<serde_json::Value>(&inspect.stdout)
        .ok()
        .and_then(|v| v["state_folder"].as_str().map(str::to_owned))
        .ok_or_else(|| {
            Error::Failed(format!(
                "the target's vic-machine answered inspect without a state folder: {}",
                inspect.stdout.trim()
            ))
        })?;
    let file = format!("{folder}/config.json");
    let read = session.run(&["cat", "--", &file], None)?;
    if read.status != 0 {
        return Err(Error::Failed(format!(
            "cannot read {file} on {}: {}",
            session.target(),
            read.stderr.trim()
        )));
    }
    let mut cfg: crate::config::VchConfig = serde_json::from_str(&read.stdout)
        .map_err(|e| Error::Failed(format!("{file} on {}: {e}", session.target())))?;
    // Nothing the target says names a file here: the name is the one asked for (it makes
    // file names such as `<name>.env` and `<name>-<user>/`), the folders are this machine's.
    cfg.name = name.to_owned();
    localize(&mut cfg, cert_path);
    // Nor what this machine prints for a shell, or signs: the address clients use is the one
    // this machine chose at create; orgs and lifetimes within what create itself allows.
    let target = session.target();
    cfg.docker_host = match super::record::docker_host(target, name) {
        Some(h) => h,
        None if plain_host(&cfg.docker_host) => cfg.docker_host.clone(),
        None => target.host.clone(),
    };
    let sane = |o: &String| !o.is_empty() && o.len() <= 64 && !o.chars().any(char::is_control);
    if cfg.options.organization.len() > 8 || !cfg.options.organization.iter().all(sane) {
        cfg.options.organization.clear();
    }
    if !(1..=36500).contains(&cfg.options.certificate_validity_days) {
        cfg.options.certificate_validity_days = vic_pki::LEAF_DAYS;
    }
    Ok(cfg)
}

/// The address certificates name beside `cname`: `cname` itself when it is one, else where
/// the target's host resolves from here.
pub(crate) fn address_of(cname: &str, target: &Target) -> Option<std::net::IpAddr> {
    use std::net::ToSocketAddrs as _;
    cname.parse().ok().or_else(|| {
        (target.host.as_str(), target.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .map(|a| a.ip())
    })
}

/// A host name or address and nothing else (no space, quote, `$` or the like).
fn plain_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && !h.starts_with('-')
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// Points a target's VCH record at this machine's certificate folder.
pub(crate) fn localize(cfg: &mut crate::config::VchConfig, cert_path: &Path) {
    cfg.cert_path = cert_path.to_owned();
    let existing = |f: &str| Some(cert_path.join(f)).filter(|p| p.is_file());
    cfg.client_ca = existing("ca.pem").or_else(|| existing("server-cert.pem"));
    cfg.client_cert = existing("cert.pem");
    cfg.client_key = existing("key.pem");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn options_are_dropped_in_every_spelling() {
        let drop = global_spellings();
        assert!(drop.contains(&"--target".to_owned()) && drop.contains(&"-t".to_owned()));
        let argv = v(&[
            "vic-machine",
            "--target",
            "ssh://h",
            "ls",
            "--thumbprint=SHA256:x",
            "-tssh://h",
            "--ssh-identity",
            "k",
            "--name",
            "vch1",
            "--",
            "--target",
        ]);
        assert_eq!(
            without(&argv, &drop),
            v(&["vic-machine", "ls", "--name", "vch1", "--", "--target"])
        );
        let create = sub_spellings("create", &["tls_cert_path", "tls_server_cert"]);
        assert!(create.contains(&"--cert-path".to_owned()), "{create:?}");
        assert!(create.contains(&"--cert".to_owned()), "{create:?}");
    }
}
