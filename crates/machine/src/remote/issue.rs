//! `vic-machine cert issue --target`: the certificate is signed here, by the CA in this
//! machine's certificate folder, and written here; the target only records it (public part),
//! so that `cert ls` lists it and `cert revoke` finds it by user.

use super::flow::{Staging, remote_config};
use super::ssh::Session;
use crate::cli::CertIssueArgs;
use crate::error::{Error, Result};
use crate::output::Out;

pub(crate) fn run(session: &Session, vm: &str, args: &CertIssueArgs, out: &mut Out) -> Result<i32> {
    let target = session.target().clone();
    let name = &args.vch.name;
    let cert_path = super::record::cert_path(&target, name).ok_or_else(|| {
        Error::Failed(format!(
            "this machine does not hold the certificate folder of VCH {name:?} on {target} (the CA key stays where `vic-machine create --target` ran): issue certificates from there"
        ))
    })?;
    let cfg = remote_config(session, vm, name, &cert_path)?;
    let listed = session.run(
        &[vm, "cert", "ls", "--name", name, "--format", "json"],
        None,
    )?;
    if listed.status != 0 {
        return Err(Error::Failed(format!(
            "cannot list the certificates of {name:?} on {target}: {}",
            listed.stderr.trim()
        )));
    }
    let live = serde_json::from_str::<Vec<serde_json::Value>>(&listed.stdout)
        .map_err(|e| Error::Failed(format!("the target's cert ls is not JSON: {e}")))?
        .into_iter()
        .find(|c| c["user"] == args.user.as_str() && c["status"] != "revoked");
    if let Some(c) = live {
        return Err(Error::Failed(format!(
            "{} already has a certificate on this VCH (serial {}): revoke it first with `vic-machine cert revoke --target {target} --name {name} --user {}`, or choose another --user",
            args.user,
            c["serial"].as_str().unwrap_or("?"),
            args.user
        )));
    }
    let issued = crate::commands::cert::sign_for_user(&cfg, args, out)?;
    let staging = Staging::new(session);
    record_on_target(
        session,
        vm,
        &staging,
        name,
        &args.user,
        &issued.cert_pem,
        args.read_only,
    )?;
    out.info(format!(
        "Recorded on {target} (the certificate only: its key stays in {})",
        issued.dir.display()
    ));
    crate::commands::cert::say_how_to_connect(&cfg, &args.user, &issued.dir, out);
    Ok(0)
}

/// Records an issued certificate (PEM, public) in the target's client list of VCH `name`.
pub(crate) fn record_on_target(
    session: &Session,
    vm: &str,
    staging: &Staging<'_>,
    name: &str,
    user: &str,
    cert_pem: &str,
    read_only: bool,
) -> Result<()> {
    let file = staging.put(&format!("{user}-cert.pem"), cert_pem.as_bytes(), 0o600)?;
    let mut argv = vec![
        vm, "cert", "record", "--name", name, "--user", user, "--cert", &file,
    ];
    if read_only {
        argv.push("--read-only");
    }
    let done = session.run(&argv, None)?;
    if done.status != 0 {
        return Err(Error::Failed(format!(
            "the target did not record the certificate of {user}: {}",
            done.stderr.trim()
        )));
    }
    Ok(())
}
