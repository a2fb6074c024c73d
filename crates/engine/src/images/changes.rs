//! Dockerfile instructions applied to an image's runtime config: `docker commit -c` and
//! `docker import -c` (`CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`, `HEALTHCHECK`, `LABEL`, `ONBUILD`,
//! `STOPSIGNAL`, `USER`, `VOLUME`, `WORKDIR`, as Docker allows there). The config is the JSON
//! object under an image config's `config`, kept as JSON so that fields this VCH does not model
//! pass through unchanged.

use serde_json::{Map, Value, json};

/// Why a change could not be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChangeError {
    #[error("{0} is not a valid change command")]
    NotAllowed(String),
    #[error("{instruction} requires {what}")]
    Arguments {
        instruction: &'static str,
        what: &'static str,
    },
    #[error("{instruction}: {reason}")]
    Invalid {
        instruction: &'static str,
        reason: String,
    },
}

/// Applies `changes` (one instruction each) to `config` in order, `$NAME`s replaced from the
/// config's `Env`.
pub(super) fn apply(
    config: &mut Map<String, Value>,
    changes: &[String],
) -> Result<(), ChangeError> {
    apply_with(config, changes, true)
}

/// [`apply`] of an instruction whose `$NAME`s the caller already replaced (the builder, which
/// knows build arguments too).
pub(super) fn apply_substituted(
    config: &mut Map<String, Value>,
    change: &str,
) -> Result<(), ChangeError> {
    apply_with(config, &[change.to_owned()], false)
}

fn apply_with(
    config: &mut Map<String, Value>,
    changes: &[String],
    subst: bool,
) -> Result<(), ChangeError> {
    let expand = |s: &str, c: &Map<String, Value>| {
        if subst { expand(s, c) } else { s.to_owned() }
    };
    for change in changes {
        let change = change.trim();
        if change.is_empty() {
            continue;
        }
        let (word, rest) = change
            .split_once(char::is_whitespace)
            .map_or((change, ""), |(w, r)| (w, r.trim()));
        match word.to_ascii_uppercase().as_str() {
            "CMD" => {
                config.insert("Cmd".into(), json!(command(rest, "CMD")?));
            }
            "ENTRYPOINT" => {
                config.insert("Entrypoint".into(), json!(command(rest, "ENTRYPOINT")?));
            }
            "ENV" => env(config, rest, &expand)?,
            "LABEL" => {
                let pairs = pairs(rest, "LABEL", config, &expand)?;
                let labels = object(config, "Labels");
                for (k, v) in pairs {
                    labels.insert(k, Value::String(v));
                }
            }
            "EXPOSE" => {
                let words = words(rest);
                if words.is_empty() {
                    return Err(ChangeError::Arguments {
                        instruction: "EXPOSE",
                        what: "at least one argument",
                    });
                }
                for w in words {
                    let w = expand(&w, config);
                    let port = port(&w)?;
                    object(config, "ExposedPorts").insert(port, json!({}));
                }
            }
            "VOLUME" => {
                let paths = match serde_json::from_str::<Vec<String>>(rest) {
                    Ok(v) => v,
                    Err(_) => words(rest),
                };
                if paths.is_empty() || paths.iter().any(String::is_empty) {
                    return Err(ChangeError::Arguments {
                        instruction: "VOLUME",
                        what: "at least one non-empty path",
                    });
                }
                for p in paths {
                    let p = expand(&p, config);
                    object(config, "Volumes").insert(p, json!({}));
                }
            }
            "USER" => {
                config.insert("User".into(), json!(expand(one(rest, "USER")?, config)));
            }
            "WORKDIR" => {
                let dir = expand(one(rest, "WORKDIR")?, config);
                // A relative folder is relative to the one before, as in a Dockerfile.
                let dir = if dir.starts_with('/') {
                    dir
                } else {
                    let base = config
                        .get("WorkingDir")
                        .and_then(Value::as_str)
                        .filter(|d| !d.is_empty())
                        .unwrap_or("/");
                    format!("{}/{dir}", base.trim_end_matches('/'))
                };
                config.insert("WorkingDir".into(), json!(dir));
            }
            "STOPSIGNAL" => {
                config.insert(
                    "StopSignal".into(),
                    json!(expand(one(rest, "STOPSIGNAL")?, config)),
                );
            }
            "ONBUILD" => {
                if rest.is_empty() {
                    return Err(ChangeError::Arguments {
                        instruction: "ONBUILD",
                        what: "at least one argument",
                    });
                }
                let trigger = rest.split_whitespace().next().unwrap_or("");
                if ["ONBUILD", "FROM", "MAINTAINER"].contains(&trigger.to_uppercase().as_str()) {
                    return Err(ChangeError::Invalid {
                        instruction: "ONBUILD",
                        reason: format!("{trigger} isn't allowed as an ONBUILD trigger"),
                    });
                }
                match config.get_mut("OnBuild").and_then(Value::as_array_mut) {
                    Some(list) => list.push(json!(rest)),
                    None => {
                        config.insert("OnBuild".into(), json!([rest]));
                    }
                }
            }
            "HEALTHCHECK" => {
                config.insert("Healthcheck".into(), healthcheck(rest)?);
            }
            _ => return Err(ChangeError::NotAllowed(word.to_owned())),
        }
    }
    Ok(())
}

/// The exec form (a JSON array) as is, the shell form run by `/bin/sh -c`.
fn command(rest: &str, instruction: &'static str) -> Result<Vec<String>, ChangeError> {
    if rest.starts_with('[')
        && let Ok(v) = serde_json::from_str::<Vec<String>>(rest)
    {
        return Ok(v);
    }
    if rest.is_empty() {
        return Err(ChangeError::Arguments {
            instruction,
            what: "at least one argument",
        });
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), rest.into()])
}

fn one<'a>(rest: &'a str, instruction: &'static str) -> Result<&'a str, ChangeError> {
    match rest.split_whitespace().count() {
        1 => Ok(rest),
        _ => Err(ChangeError::Arguments {
            instruction,
            what: "exactly one argument",
        }),
    }
}

fn object<'a>(config: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    if !config.get(key).is_some_and(Value::is_object) {
        config.insert(key.into(), Value::Object(Map::new()));
    }
    config
        .get_mut(key)
        .and_then(Value::as_object_mut)
        .expect("just made an object")
}

/// How a value's `$NAME`s are replaced (or not).
type Expand<'a> = &'a dyn Fn(&str, &Map<String, Value>) -> String;

fn env(config: &mut Map<String, Value>, rest: &str, expand: Expand) -> Result<(), ChangeError> {
    for (k, v) in pairs(rest, "ENV", config, expand)? {
        let mut list: Vec<String> = config
            .get("Env")
            .and_then(|e| serde_json::from_value(e.clone()).ok())
            .unwrap_or_default();
        let entry = format!("{k}={v}");
        match list
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) == k)
        {
            Some(e) => *e = entry,
            None => list.push(entry),
        }
        config.insert("Env".into(), json!(list));
    }
    Ok(())
}

/// `k=v k2="v 2"` pairs, or the legacy `k v...` form (one pair, the rest of the line).
fn pairs(
    rest: &str,
    instruction: &'static str,
    config: &Map<String, Value>,
    expand: Expand,
) -> Result<Vec<(String, String)>, ChangeError> {
    let words = words(rest);
    let Some(first) = words.first() else {
        return Err(ChangeError::Arguments {
            instruction,
            what: "at least one argument",
        });
    };
    if !first.contains('=') {
        let value = rest[rest.find(char::is_whitespace).unwrap_or(rest.len())..].trim();
        if value.is_empty() {
            return Err(ChangeError::Arguments {
                instruction,
                what: "two arguments",
            });
        }
        return Ok(vec![(first.clone(), expand(&unquote(value), config))]);
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), expand(v, config))),
            _ => Err(ChangeError::Invalid {
                instruction,
                reason: format!("{w:?} is not NAME=VALUE"),
            }),
        })
        .collect()
}

/// Words split on blanks outside quotes, quotes removed, `\` escaping the next character.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

fn unquote(s: &str) -> String {
    let w = words(s);
    if w.len() == 1 { w[0].clone() } else { s.into() }
}

/// `$NAME` and `${NAME}` replaced from the config's `Env` (unset: empty), as a Dockerfile does.
fn expand(s: &str, config: &Map<String, Value>) -> String {
    let env: Vec<String> = config
        .get("Env")
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .unwrap_or_default();
    let lookup = |name: &str| {
        env.iter()
            .find_map(|e| e.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
            .unwrap_or("")
            .to_owned()
    };
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
        } else {
            out.push_str(&lookup(name));
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    out
}

/// `80`, `80/tcp`, `53/udp`, `8000-8002/tcp` as Docker's `ExposedPorts` key.
fn port(w: &str) -> Result<String, ChangeError> {
    let (num, proto) = w.split_once('/').unwrap_or((w, "tcp"));
    let ok_num = |n: &str| n.parse::<u16>().is_ok_and(|p| p > 0);
    let ok = match num.split_once('-') {
        Some((a, b)) => ok_num(a) && ok_num(b),
        None => ok_num(num),
    };
    let proto = proto.to_ascii_lowercase();
    if !ok || !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
        return Err(ChangeError::Invalid {
            instruction: "EXPOSE",
            reason: format!("invalid port {w:?}: use PORT[/tcp|udp|sctp]"),
        });
    }
    Ok(format!("{num}/{proto}"))
}

/// `NONE`, or `[--interval=D] [--timeout=D] [--start-period=D] [--retries=N] CMD ...`.
fn healthcheck(rest: &str) -> Result<Value, ChangeError> {
    let bad = |reason: String| ChangeError::Invalid {
        instruction: "HEALTHCHECK",
        reason,
    };
    if rest.eq_ignore_ascii_case("NONE") {
        return Ok(json!({ "Test": ["NONE"] }));
    }
    let mut hc = Map::new();
    let mut rest = rest;
    while let Some(flag) = rest.strip_prefix("--") {
        let (opt, tail) = flag
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad("CMD is missing".into()))?;
        let (name, value) = opt
            .split_once('=')
            .ok_or_else(|| bad(format!("--{opt} needs a value")))?;
        let key = match name {
            "interval" => "Interval",
            "timeout" => "Timeout",
            "start-period" => "StartPeriod",
            "start-interval" => "StartInterval",
            "retries" => "Retries",
            _ => return Err(bad(format!("unknown flag --{name}"))),
        };
        let v = if key == "Retries" {
            json!(
                value
                    .parse::<u32>()
                    .map_err(|_| bad(format!("--retries={value} is not a number")))?
            )
        } else {
            let nanos = go_duration(value).ok_or_else(|| {
                bad(format!(
                    "--{name}={value} is not a duration such as 30s or 1m30s"
                ))
            })?;
            json!(nanos)
        };
        hc.insert(key.into(), v);
        rest = tail.trim_start();
    }
    let (word, cmd) = rest
        .split_once(char::is_whitespace)
        .map_or((rest, ""), |(w, c)| (w, c.trim()));
    if !word.eq_ignore_ascii_case("CMD") {
        return Err(bad(format!("expected NONE or CMD, got {word:?}")));
    }
    let test = match command(cmd, "HEALTHCHECK")? {
        v if cmd.starts_with('[') => [vec!["CMD".to_owned()], v].concat(),
        _ => vec!["CMD-SHELL".to_owned(), cmd.to_owned()],
    };
    hc.insert("Test".into(), json!(test));
    Ok(Value::Object(hc))
}

/// A duration as Go writes it (`90s`, `1m30s`, `1.5s`, `250ms`), in nanoseconds.
fn go_duration(s: &str) -> Option<i64> {
    vic_core::time::go_duration(s).and_then(|n| i64::try_from(n).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(base: Value, changes: &[&str]) -> Result<Value, ChangeError> {
        let mut m = base.as_object().cloned().unwrap_or_default();
        let changes: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply(&mut m, &changes)?;
        Ok(Value::Object(m))
    }

    #[test]
    fn docker_py_changes() {
        let c = applied(
            json!({}),
            &["USER foobar", r#"CMD ["echo"]"#, "EXPOSE 8000"],
        )
        .unwrap();
        assert_eq!(c["User"], "foobar");
        assert_eq!(c["Cmd"], json!(["echo"]));
        assert_eq!(c["ExposedPorts"], json!({"8000/tcp": {}}));
    }

    #[test]
    fn env_labels_and_expansion() {
        let c = applied(
            json!({"Env": ["PATH=/bin", "A=1"]}),
            &[
                r#"ENV A=2 B="two words" C=${A}x"#,
                "ENV D the rest of the line",
                r#"LABEL "com.x"=y z=$B"#,
                "WORKDIR /srv",
                "WORKDIR app",
                "CMD echo hi",
                "VOLUME /data /logs",
            ],
        )
        .unwrap();
        assert_eq!(
            c["Env"],
            // One instruction sees the values from before it (Docker: `ENV abc=bye def=$abc`
            // gives def the old abc).
            json!([
                "PATH=/bin",
                "A=2",
                "B=two words",
                "C=1x",
                "D=the rest of the line"
            ])
        );
        assert_eq!(c["Labels"], json!({"com.x": "y", "z": "two words"}));
        assert_eq!(c["WorkingDir"], "/srv/app");
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(c["Volumes"], json!({"/data": {}, "/logs": {}}));
    }

    #[test]
    fn healthchecks() {
        let c = applied(
            json!({}),
            &["HEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost"],
        )
        .unwrap();
        assert_eq!(
            c["Healthcheck"],
            json!({"Interval": 5_000_000_000i64, "Retries": 3, "Test": ["CMD-SHELL", "wget -q localhost"]})
        );
        let c = applied(json!({}), &[r#"HEALTHCHECK CMD ["true"]"#]).unwrap();
        assert_eq!(c["Healthcheck"]["Test"], json!(["CMD", "true"]));
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(go_duration("250ms"), Some(250_000_000));
        assert_eq!(go_duration("5"), None);
        assert_eq!(go_duration("5x"), None);
    }

    #[test]
    fn refusals_name_the_problem() {
        assert_eq!(
            applied(json!({}), &["RUN rm -rf /"]).unwrap_err(),
            ChangeError::NotAllowed("RUN".into())
        );
        assert!(matches!(
            applied(json!({}), &["EXPOSE 99999"]),
            Err(ChangeError::Invalid { .. })
        ));
        assert!(matches!(
            applied(json!({}), &["USER a b"]),
            Err(ChangeError::Arguments { .. })
        ));
        assert!(matches!(
            applied(json!({}), &["ONBUILD FROM x"]),
            Err(ChangeError::Invalid { .. })
        ));
    }
}
