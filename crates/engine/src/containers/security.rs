//! `--security-opt`: which of Docker's options a VCH honours, and a clear refusal for the rest.

use crate::EngineError;
use crate::error::ContainerConfigError;

/// The options that change the runtime spec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SecurityOptions {
    pub seccomp_unconfined: bool,
    pub no_new_privileges: bool,
    pub unmasked_paths: bool,
}

fn invalid(opt: &str, why: &str) -> EngineError {
    ContainerConfigError::SecurityOpt {
        opt: opt.to_owned(),
        why: why.to_owned(),
    }
    .into()
}

/// Parses Docker's `HostConfig.SecurityOpt` (`key=value`, or the older `key:value`).
pub(crate) fn parse(opts: &[String]) -> Result<SecurityOptions, EngineError> {
    let mut out = SecurityOptions::default();
    for opt in opts {
        if opt == "no-new-privileges" {
            out.no_new_privileges = true;
            continue;
        }
        let Some((key, value)) = opt.split_once('=').or_else(|| opt.split_once(':')) else {
            return Err(invalid(
                opt,
                "expected KEY=VALUE (seccomp=unconfined, no-new-privileges, systempaths=unconfined)",
            ));
        };
        match (key, value) {
            ("seccomp", "unconfined") => out.seccomp_unconfined = true,
            ("seccomp", "builtin" | "default") => out.seccomp_unconfined = false,
            ("seccomp", _) => {
                return Err(ContainerConfigError::SeccompProfile.into());
            }
            ("no-new-privileges", v) => {
                out.no_new_privileges = v
                    .parse()
                    .map_err(|_| invalid(opt, "no-new-privileges takes true or false"))?
            }
            ("systempaths", "unconfined") => out.unmasked_paths = true,
            // Neither AppArmor nor SELinux confines containers here: only the options that
            // ask for no confinement are true as given.
            ("apparmor", "unconfined") | ("label", "disable") => {}
            ("apparmor" | "label", _) => {
                return Err(invalid(
                    opt,
                    "this VCH does not use AppArmor or SELinux; only apparmor=unconfined and label=disable are accepted",
                ));
            }
            _ => {
                return Err(invalid(
                    opt,
                    "unknown option (seccomp=unconfined, no-new-privileges, systempaths=unconfined)",
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> Result<SecurityOptions, EngineError> {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn docker_spellings() {
        assert_eq!(p(&[]).unwrap(), SecurityOptions::default());
        let o = p(&["seccomp=unconfined", "no-new-privileges"]).unwrap();
        assert!(o.seccomp_unconfined && o.no_new_privileges && !o.unmasked_paths);
        assert!(p(&["seccomp:unconfined"]).unwrap().seccomp_unconfined);
        assert!(p(&["no-new-privileges=true"]).unwrap().no_new_privileges);
        assert!(!p(&["no-new-privileges:false"]).unwrap().no_new_privileges);
        assert!(p(&["systempaths=unconfined"]).unwrap().unmasked_paths);
        assert!(p(&["apparmor=unconfined", "label=disable"]).is_ok());
    }

    #[test]
    fn what_is_not_honoured_is_refused() {
        for bad in [
            "seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}",
            "apparmor=docker-default",
            "label=type:svirt_t",
            "no-new-privileges=maybe",
            "bogus",
            "foo=bar",
        ] {
            assert!(p(&[bad]).is_err(), "{bad} accepted");
        }
    }
}
