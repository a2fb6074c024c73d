//! What Docker's list, prune and event endpoints share: the `filters` query, label tests and
//! the times that `since`, `until` and prune's `until` take.

use std::collections::BTreeMap;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::ApiError;

/// The `filters` query (`{"key":["v"]}` or the older `{"key":{"v":true}}`).
pub(crate) fn parse_filters(
    raw: Option<&String>,
) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let v: Value = serde_json::from_str(raw)
        .map_err(|e| ApiError::BadRequest(format!("invalid filters: {e}")))?;
    let mut out = BTreeMap::new();
    if let Value::Object(map) = v {
        for (k, vals) in map {
            let list = match vals {
                Value::Object(m) => m
                    .into_iter()
                    .filter(|(_, b)| b.as_bool() != Some(false))
                    .map(|(k, _)| k)
                    .collect(),
                Value::Array(a) => a
                    .into_iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect(),
                _ => vec![],
            };
            out.insert(k, list);
        }
    }
    Ok(out)
}

/// Refuses a filter key not in `known`, naming those that are.
pub(crate) fn check_keys(
    filters: &BTreeMap<String, Vec<String>>,
    known: &[&str],
) -> Result<(), ApiError> {
    match filters.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(ApiError::BadRequest(format!(
            "invalid filter '{k}' (valid here: {})",
            known.join(", ")
        ))),
    }
}

/// How large a client's expression may grow once compiled: the filter comes from the client,
/// and a pattern such as `a{1000}{1000}` must not take the endpoint's memory.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// The values of a filter that Docker matches as regular expressions (`name` in `ps`,
/// `network ls` and `volume ls`, `id` in `network ls`): a string matches when it equals a
/// value or a value's expression finds it anywhere in it, unanchored (moby's
/// `filters.Args.Match`). `None` when the filter is not given: everything matches.
pub(crate) struct Patterns {
    exact: Vec<String>,
    regexes: Vec<regex::Regex>,
}

impl Patterns {
    /// The values of filter `key`, compiled; an expression that does not compile is refused
    /// (Docker would silently match nothing, which hides the typo from the user).
    pub(crate) fn of(
        filters: &BTreeMap<String, Vec<String>>,
        key: &str,
    ) -> Result<Option<Self>, ApiError> {
        let Some(values) = filters.get(key) else {
            return Ok(None);
        };
        let regexes = values
            .iter()
            .map(|v| {
                regex::RegexBuilder::new(v)
                    .size_limit(PATTERN_SIZE_LIMIT)
                    .dfa_size_limit(PATTERN_SIZE_LIMIT)
                    .build()
                    .map_err(|e| {
                        ApiError::BadRequest(format!(
                            "invalid filter '{key}={v}': error parsing regexp: {}",
                            regex_reason(&e)
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Some(Self {
            exact: values.clone(),
            regexes,
        }))
    }

    /// Whether `s` equals one of the values or one of their expressions finds it.
    pub(crate) fn matches(&self, s: &str) -> bool {
        self.exact.iter().any(|v| v == s) || self.regexes.iter().any(|r| r.is_match(s))
    }
}

/// Whether `patterns` (absent: no filter) accept any of `candidates`.
pub(crate) fn pattern_matches(patterns: Option<&Patterns>, candidates: &[&str]) -> bool {
    patterns.is_none_or(|p| candidates.iter().any(|c| p.matches(c)))
}

/// The one line of the regex crate's error that says what is wrong (its message otherwise
/// draws the pattern and a caret over several lines).
fn regex_reason(e: &regex::Error) -> String {
    match e {
        regex::Error::CompiledTooBig(limit) => {
            format!("expression too large (over {limit} bytes compiled)")
        }
        other => {
            let text = other.to_string();
            text.lines()
                .rev()
                .find_map(|l| l.trim().strip_prefix("error: "))
                .map_or_else(|| text.clone(), str::to_owned)
        }
    }
}

/// A `label=` value against labels looked up with `get`: `key` (present) or `key=value`.
pub(crate) fn label_matches<'a>(want: &str, get: impl Fn(&str) -> Option<&'a str>) -> bool {
    match want.split_once('=') {
        Some((k, v)) => get(k) == Some(v),
        None => get(want).is_some(),
    }
}

/// The `label` and `label!` filters of a prune: every `label` matches, no `label!` does.
pub(crate) fn prune_labels_match<'a>(
    filters: &BTreeMap<String, Vec<String>>,
    get: impl Fn(&str) -> Option<&'a str> + Copy,
) -> bool {
    filters
        .get("label")
        .is_none_or(|ws| ws.iter().all(|w| label_matches(w, get)))
        && filters
            .get("label!")
            .is_none_or(|ws| !ws.iter().any(|w| label_matches(w, get)))
}

/// A `since`/`until` value of the CLI's making: Unix seconds, possibly with a fraction
/// (`1700000000.5`), as nanoseconds.
pub(crate) fn timestamp(raw: Option<&String>, name: &str) -> Result<Option<i128>, ApiError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    unix_nanos(raw).map(Some).ok_or_else(|| {
        ApiError::BadRequest(format!("invalid {name} value {raw:?}: use Unix seconds"))
    })
}

fn unix_nanos(raw: &str) -> Option<i128> {
    let (secs, frac) = raw.split_once('.').unwrap_or((raw, ""));
    let secs: i128 = secs.parse().ok()?;
    let frac = if frac.is_empty() {
        0
    } else if frac.len() <= 9 && frac.bytes().all(|b| b.is_ascii_digit()) {
        format!("{frac:0<9}").parse::<i128>().ok()?
    } else {
        return None;
    };
    Some(secs * 1_000_000_000 + frac)
}

/// The `until` of a prune, as the user typed it (the CLI passes it on as it is): a duration
/// before `now` (`24h`, `1h30m`, `90s`), Unix seconds, or an RFC 3339 date or time with or
/// without its zone (without: UTC, this host's time). Unix nanoseconds.
pub(crate) fn until(raw: &str, now: OffsetDateTime) -> Result<i128, ApiError> {
    let bad = || {
        ApiError::BadRequest(format!(
            "invalid until value {raw:?}: use a duration (24h, 90m), Unix seconds or an RFC 3339 date"
        ))
    };
    if raw != "0"
        && let Some(d) = vic_core::time::go_duration(raw)
    {
        return Ok(now.unix_timestamp_nanos() - d);
    }
    if let Some(n) = unix_nanos(raw) {
        return Ok(n);
    }
    if let Ok(t) = OffsetDateTime::parse(raw, &Rfc3339) {
        return Ok(t.unix_timestamp_nanos());
    }
    // Zoneless forms, read as UTC.
    let full = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    let minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let hours = format_description!("[year]-[month]-[day]T[hour]");
    for f in [full, minutes, hours] {
        if let Ok(t) = time::PrimitiveDateTime::parse(raw, f) {
            return Ok(t.assume_utc().unix_timestamp_nanos());
        }
    }
    if let Ok(d) = time::Date::parse(raw, format_description!("[year]-[month]-[day]")) {
        return Ok(d.midnight().assume_utc().unix_timestamp_nanos());
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_in_both_shapes() {
        let f = parse_filters(Some(
            &r#"{"reference":{"busy*":true,"no":false},"dangling":["false"]}"#.to_owned(),
        ))
        .unwrap();
        assert_eq!(f["reference"], vec!["busy*"]);
        assert_eq!(f["dangling"], vec!["false"]);
        assert!(check_keys(&f, &["reference", "dangling"]).is_ok());
        assert!(check_keys(&f, &["reference"]).is_err());
    }

    #[test]
    fn patterns_match_as_docker_regexps() {
        let f = |v: &[&str]| {
            BTreeMap::from([(
                "name".to_owned(),
                v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
            )])
        };
        let p = |v: &[&str]| Patterns::of(&f(v), "name").unwrap().unwrap();
        // Unanchored: a plain value is a substring test.
        assert!(p(&["web"]).matches("/myweb"));
        assert!(p(&["^/web$"]).matches("/web"));
        assert!(!p(&["^/web$"]).matches("/web2"));
        assert!(!p(&["^/web$"]).matches("/myweb"));
        // Any value may match.
        assert!(p(&["^db$", "^web$"]).matches("web"));
        assert!(p(&["(?i)^WEB"]).matches("web"));
        // Equal to the value counts even where the expression would not find it.
        assert!(p(&["a+b"]).matches("a+b"));
        assert!(pattern_matches(None, &["x"]));
        assert!(pattern_matches(Some(&p(&["^net$"])), &["other", "net"]));
        assert!(!pattern_matches(Some(&p(&["^net$"])), &["net2"]));
        assert!(Patterns::of(&BTreeMap::new(), "name").unwrap().is_none());
        let Err(ApiError::BadRequest(msg)) = Patterns::of(&f(&["["]), "name") else {
            panic!("an unclosed class compiled");
        };
        assert_eq!(
            msg,
            "invalid filter 'name=[': error parsing regexp: unclosed character class"
        );
        let Err(ApiError::BadRequest(msg)) = Patterns::of(&f(&["(a{1000}){1000}"]), "name") else {
            panic!("a huge expression compiled");
        };
        assert!(msg.contains("too large"), "{msg}");
    }

    #[test]
    fn labels_match_by_key_or_pair_and_prune_negates() {
        let labels = std::collections::HashMap::from([("tier".to_owned(), "front".to_owned())]);
        let get = |k: &str| labels.get(k).map(String::as_str);
        assert!(label_matches("tier", get));
        assert!(label_matches("tier=front", get));
        assert!(!label_matches("tier=back", get));
        assert!(!label_matches("team", get));
        let f = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), vec![v.to_owned()])]);
        assert!(prune_labels_match(&f("label", "tier"), get));
        assert!(!prune_labels_match(&f("label!", "tier"), get));
        assert!(prune_labels_match(&f("label!", "tier=back"), get));
        assert!(prune_labels_match(&BTreeMap::new(), get));
    }

    #[test]
    fn times_in_docker_grammar() {
        assert_eq!(
            timestamp(Some(&"12.5".into()), "since").unwrap(),
            Some(12_500_000_000)
        );
        assert_eq!(timestamp(None, "since").unwrap(), None);
        assert!(timestamp(Some(&"soon".into()), "since").is_err());
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        let s = |n: i128| n * 1_000_000_000;
        assert_eq!(until("24h", now).unwrap(), s(1_000_000 - 86_400));
        assert_eq!(until("1h30m", now).unwrap(), s(1_000_000 - 5_400));
        assert_eq!(until("1.5h", now).unwrap(), s(1_000_000 - 5_400));
        assert_eq!(until("90s", now).unwrap(), s(1_000_000 - 90));
        assert_eq!(until("0", now).unwrap(), 0);
        assert_eq!(until("1700000000", now).unwrap(), s(1_700_000_000));
        assert_eq!(
            until("2023-11-14T22:13:20Z", now).unwrap(),
            s(1_700_000_000)
        );
        assert_eq!(
            until("2023-11-14T23:13:20+01:00", now).unwrap(),
            s(1_700_000_000)
        );
        assert_eq!(until("2023-11-14T22:13:20", now).unwrap(), s(1_700_000_000));
        assert_eq!(
            until("2023-11-14T22:13", now).unwrap(),
            s(1_700_000_000 - 20)
        );
        assert_eq!(until("2023-11-14", now).unwrap(), s(1_699_920_000));
        for bad in ["", "soon", "5x", "h", "-2h", "2023-13-40"] {
            assert!(until(bad, now).is_err(), "{bad}");
        }
    }
}
