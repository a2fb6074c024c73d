//! `vic-machine ls`: every VCH of the state root with its address, security and health.

use std::path::Path;
use std::time::Duration;

use crate::cli::{Format, LsArgs};
use crate::commands::absolute;
use crate::commands::json::{VchListItem, cert_expiry};
use crate::config::{self, TlsLevel, VchConfig, VchPaths};
use crate::error::Result;
use crate::output::Out;
use crate::{ping, process};

/// `running`, `not responding` or `stopped`.
pub(crate) fn status(cfg: &VchConfig, paths: &VchPaths) -> &'static str {
    match process::running_pid(paths) {
        None => "stopped",
        Some(_) => match ping::ping(cfg, paths, Duration::from_secs(2)) {
            Ok(_) => "running",
            Err(_) => "not responding",
        },
    }
}

/// The notAfter date (YYYY-MM-DD) of the first certificate in `file`.
pub(crate) fn expiry(file: Option<&Path>) -> String {
    let Some(file) = file else {
        return "-".to_owned();
    };
    vic_pki::load_bundle(file)
        .ok()
        .and_then(|b| b.certs.first().and_then(|c| vic_pki::summarize(c).ok()))
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s.not_after).ok())
        .map(|t| format!("{}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()))
        .unwrap_or_else(|| "unreadable".to_owned())
}

/// `ls --format json`: the same facts as the table, one object per VCH.
fn run_json(root: &Path, out: &mut Out) -> Result<()> {
    let mut items = Vec::new();
    for name in config::list_names(root)? {
        let paths = VchPaths::new(root, &name);
        items.push(match VchConfig::load(&paths) {
            Ok(cfg) => VchListItem {
                docker_host: Some(format!("tcp://{}", cfg.docker_host_port())),
                tls: Some(cfg.tls.into()),
                status: status(&cfg, &paths).to_owned(),
                error: None,
                server_cert_expires: (cfg.tls != TlsLevel::None)
                    .then(|| cert_expiry(&paths.server_cert()))
                    .flatten(),
                client_cert_expires: cfg.client_cert.as_deref().and_then(cert_expiry),
                warnings: crate::clients::expiry_notices(&cfg, &paths)
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                name,
            },
            Err(e) => VchListItem {
                name,
                docker_host: None,
                tls: None,
                status: "broken".to_owned(),
                error: Some(e.to_string()),
                server_cert_expires: None,
                client_cert_expires: None,
                warnings: Vec::new(),
            },
        });
    }
    out.json(&items)
}

pub(crate) fn run(args: LsArgs, out: &mut Out) -> Result<()> {
    let root = absolute(&args.root.root)?;
    if args.format == Format::Json {
        return run_json(&root, out);
    }
    let mut rows = vec![[
        "NAME".to_owned(),
        "ADDRESS".to_owned(),
        "TLS".to_owned(),
        "STATUS".to_owned(),
        "SERVER CERT EXPIRES".to_owned(),
        "CLIENT CERT EXPIRES".to_owned(),
    ]];
    let mut warnings = Vec::new();
    for name in config::list_names(&root)? {
        let paths = VchPaths::new(&root, &name);
        let row = match VchConfig::load(&paths) {
            Ok(cfg) => {
                for notice in crate::clients::expiry_notices(&cfg, &paths) {
                    warnings.push(format!(
                        "{name}: {notice}: renew it with vic-machine configure --name {name} --renew-certificates"
                    ));
                }
                let tls = cfg.tls != TlsLevel::None;
                [
                    name,
                    format!("tcp://{}", cfg.docker_host_port()),
                    cfg.tls.to_string(),
                    status(&cfg, &paths).to_owned(),
                    if tls {
                        expiry(Some(&paths.server_cert()))
                    } else {
                        "-".to_owned()
                    },
                    expiry(cfg.client_cert.as_deref()),
                ]
            }
            Err(e) => [
                name,
                "-".into(),
                "-".into(),
                format!("broken: {e}"),
                "-".into(),
                "-".into(),
            ],
        };
        rows.push(row);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.info(line.join("  ").trim_end());
    }
    for w in warnings {
        out.warn(w);
    }
    Ok(())
}
