//! `vic-machine metrics token create|ls|revoke`: bearer tokens for Prometheus scrapers of
//! `https://VCH:2378/metrics` that hold no client certificate. The secret is printed once;
//! the VCH keeps its hash (`vic_api::metrics_tokens`), read by the portal at each scrape, so a
//! revoked token is refused from the next request on, with the endpoint left running.

use clap::{Args, Subcommand};
use vic_api::metrics_tokens::{self, MetricsToken, TOKENS_FILE};

use crate::cli::{Format, VchArgs};
use crate::commands::absolute;
use crate::commands::inspect::load;
use crate::error::{Error, Result};
use crate::output::Out;

#[derive(Debug, Subcommand)]
pub(crate) enum MetricsCommand {
    /// Bearer tokens for scrapers of https://VCH:2378/metrics without a client certificate
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Make a token (printed once; the VCH keeps only its hash)
    Create(TokenArgs),
    /// List a VCH's metrics tokens (names and dates, never the secrets)
    Ls(TokenLsArgs),
    /// Revoke a token: refused from the next scrape on
    Revoke(TokenArgs),
}

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    #[command(flatten)]
    pub(crate) vch: VchArgs,
    /// The token's name: who scrapes with it (letters, digits, '.', '_', '-')
    #[arg(long = "token-name", value_name = "NAME")]
    pub(crate) label: String,
}

#[derive(Debug, Args)]
pub(crate) struct TokenLsArgs {
    #[command(flatten)]
    pub(crate) vch: VchArgs,
    /// Output format: text or json (an array of {name, created})
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
}

/// Runs a `metrics` subcommand; returns the command's name for the failure report.
pub(crate) fn run(cmd: MetricsCommand, out: &mut Out) -> (&'static str, Result<()>) {
    match cmd {
        MetricsCommand::Token(TokenCommand::Create(a)) => ("metrics token create", create(a, out)),
        MetricsCommand::Token(TokenCommand::Ls(a)) => ("metrics token ls", ls(a, out)),
        MetricsCommand::Token(TokenCommand::Revoke(a)) => ("metrics token revoke", revoke(a, out)),
    }
}

/// The VCH's token file, and the address its portal is reached at.
fn token_file(vch: &VchArgs) -> Result<(std::path::PathBuf, String)> {
    let root = absolute(&vch.root.root)?;
    let (cfg, paths) = load(&root, &vch.name)?;
    Ok((paths.dir.join(TOKENS_FILE), cfg.docker_host.clone()))
}

fn read(path: &std::path::Path) -> Result<Vec<MetricsToken>> {
    metrics_tokens::load(path).map_err(Error::io("cannot read", path))
}

fn create(args: TokenArgs, out: &mut Out) -> Result<()> {
    metrics_tokens::check_name(&args.label).map_err(|e| Error::Usage(e.to_string()))?;
    let (path, host) = token_file(&args.vch)?;
    let mut tokens = read(&path)?;
    if tokens.iter().any(|t| t.name == args.label) {
        return Err(Error::Usage(format!(
            "VCH {} already has a metrics token named {:?}: revoke it first (vic-machine metrics token revoke --name {} --token-name {}), or choose another name",
            args.vch.name, args.label, args.vch.name, args.label
        )));
    }
    let (secret, record) = metrics_tokens::generate(&args.label, vic_core::time::now_rfc3339())
        .map_err(|e| Error::Failed(format!("cannot make a token: {e}")))?;
    tokens.push(record);
    metrics_tokens::save(&path, &tokens).map_err(Error::io("cannot write", &path))?;
    out.info(format!(
        "Metrics token {:?} created for VCH {}. It is shown only now; the VCH keeps just a hash of it:",
        args.label, args.vch.name
    ));
    out.info(&secret);
    out.section(
        "Scrape with it (the portal's certificate is the VCH's server certificate):",
        format!(
            "curl --cacert ca.pem -H 'Authorization: Bearer {secret}' https://{host}:{}/metrics",
            crate::endpoint::PORTAL_PORT
        ),
    );
    out.info(format!(
        "Prometheus: scheme: https, authorization: {{credentials: <the token>}}, tls_config: {{ca_file: ca.pem}}, targets: ['{host}:{}']",
        crate::endpoint::PORTAL_PORT
    ));
    Ok(())
}

fn ls(args: TokenLsArgs, out: &mut Out) -> Result<()> {
    let (path, _) = token_file(&args.vch)?;
    let tokens = read(&path)?;
    if args.format == Format::Json {
        /// A token as `ls --format json` shows it: never its hash.
        #[derive(serde::Serialize)]
        struct Item<'a> {
            name: &'a str,
            created: &'a str,
        }
        let items: Vec<_> = tokens
            .iter()
            .map(|t| Item {
                name: &t.name,
                created: &t.created,
            })
            .collect();
        return out.json(&items);
    }
    let rows: Vec<[String; 2]> = tokens
        .iter()
        .map(|t| [t.name.clone(), t.created.clone()])
        .collect();
    out.table(&["NAME", "CREATED"], &rows);
    Ok(())
}

fn revoke(args: TokenArgs, out: &mut Out) -> Result<()> {
    let (path, _) = token_file(&args.vch)?;
    let mut tokens = read(&path)?;
    let before = tokens.len();
    tokens.retain(|t| t.name != args.label);
    if tokens.len() == before {
        return Err(Error::Failed(format!(
            "VCH {} has no metrics token named {:?} (see vic-machine metrics token ls --name {})",
            args.vch.name, args.label, args.vch.name
        )));
    }
    metrics_tokens::save(&path, &tokens).map_err(Error::io("cannot write", &path))?;
    out.info(format!(
        "Metrics token {:?} of VCH {} revoked: scrapes with it are refused from now on",
        args.label, args.vch.name
    ));
    Ok(())
}
