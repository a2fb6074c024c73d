//! `--log-driver` and `--log-opt` (`HostConfig.LogConfig`): the drivers this VCH has
//! (`json-file`, Docker's default, and `none`) and the json-file options it implements,
//! checked at create with Docker's messages.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vic_runtime::logfile::LogLimits;

use crate::EngineError;
use crate::error::ContainerConfigError;

/// The most files a container's log is kept in.
const MAX_FILES: i64 = 100;

/// The smallest `max-size` a log that rotates into several files may have.
const MIN_ROTATED_SIZE: u64 = 1024;

/// The VCH-wide default rotation when the administrator sets none at create: five files of
/// 10 MB, 50 MB a container at most. Docker's own default (json-file, no rotation) lets one
/// chatty container fill the host's disk; Docker's `local` driver keeps 5 x 20 MB, and Docker
/// recommends `max-size=10m max-file=3` in daemon.json. 10 MB files keep `docker logs --tail`
/// and the portal's tail cheap (one file read), and five of them keep a day of a busy
/// service's output without any administrator action.
pub const DEFAULT_MAX_SIZE: &str = "10m";
/// See [`DEFAULT_MAX_SIZE`].
pub const DEFAULT_MAX_FILE: u32 = 5;

/// The log size kept for attached clients of a container without a log (`--log-driver
/// none`): the monitor still writes the output, for `docker attach` and `run` to read
/// (attach reads the log), in two files of 1 MB at most; `docker logs` never reads it.
const ATTACH_BUFFER: LogLimits = LogLimits {
    max_size: Some(1_000_000),
    max_file: 2,
};

/// A container's logging, as `docker inspect` shows it (`HostConfig.LogConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    /// `json-file` or `none` (empty in records made before drivers were kept: json-file).
    pub driver: String,
    /// The options as given (`--log-opt`), or the VCH's default rotation when none of them
    /// bounds the log (as Docker's daemon `log-opts` show in `docker inspect`).
    pub options: BTreeMap<String, String>,
    /// The VCH's default `max-size` when the client gave `max-file` without one (Docker would
    /// keep such a log in one file without end; this VCH rotates it at the default size), or
    /// the built-in default's when nothing was given. Not shown in `docker inspect`, which
    /// shows the options as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implied_max_size: Option<u64>,
    /// The built-in default's `max-file` when nothing was given, unshown as above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implied_max_file: Option<u32>,
}

impl LogConfig {
    /// Checks a driver and its options as Docker does (an empty driver is json-file).
    pub fn new(driver: &str, options: BTreeMap<String, String>) -> Result<Self, EngineError> {
        let driver = if driver.is_empty() {
            "json-file"
        } else {
            driver
        };
        let config = Self {
            driver: driver.to_owned(),
            options,
            implied_max_size: None,
            implied_max_file: None,
        };
        if driver == "none" {
            // Docker takes any options with no log at all.
            return Ok(config);
        }
        let opt = |k: &str| config.options.get(k).map(String::as_str);
        match opt("mode") {
            None | Some("" | "blocking") => {}
            Some("non-blocking") => {
                return Err(unsupported("mode=non-blocking"));
            }
            Some(m) => return Err(bad(format!("logger: logging mode not supported: {m}"))),
        }
        if opt("max-buffer-size").is_some() {
            return Err(bad(
                "logger: max-buffer-size option is only supported with 'mode=non-blocking'".into(),
            ));
        }
        if driver != "json-file" {
            return Err(ContainerConfigError::LogDriver(driver.to_owned()).into());
        }
        for key in config.options.keys() {
            match key.as_str() {
                "mode" | "max-size" | "max-file" | "compress" => {}
                // Accepted by Docker's json-file, which does nothing with it.
                "tag" => {}
                "labels" | "labels-regex" | "env" | "env-regex" => {
                    return Err(unsupported(key));
                }
                _ => {
                    return Err(ContainerConfigError::LogOpt {
                        opt: key.clone(),
                        driver: driver.to_owned(),
                    }
                    .into());
                }
            }
        }
        config.json_file_limits()?;
        if let Some(c) = opt("compress") {
            match parse_bool(c) {
                Some(false) => {}
                Some(true) => return Err(unsupported("compress")),
                None => {
                    return Err(bad(format!(
                        "strconv.ParseBool: parsing \"{c}\": invalid syntax"
                    )));
                }
            }
        }
        Ok(config)
    }

    /// The VCH-wide default (`--container-log-max-size`, `--container-log-max-file`), checked
    /// as a client's `--log-opt max-size/max-file` is.
    pub fn vch_default(max_size: &str, max_file: u32) -> Result<Self, EngineError> {
        let options = BTreeMap::from([
            ("max-size".to_owned(), max_size.to_owned()),
            ("max-file".to_owned(), max_file.to_string()),
        ]);
        Self::new("json-file", options)
    }

    /// The built-in default, [`DEFAULT_MAX_SIZE`] x [`DEFAULT_MAX_FILE`].
    pub fn builtin_default() -> Self {
        Self {
            driver: "json-file".to_owned(),
            options: BTreeMap::from([
                ("max-size".to_owned(), DEFAULT_MAX_SIZE.to_owned()),
                ("max-file".to_owned(), DEFAULT_MAX_FILE.to_string()),
            ]),
            implied_max_size: None,
            implied_max_file: None,
        }
    }

    /// This configuration with the VCH's default (`default`, made by [`Self::vch_default`])
    /// where the client bounded nothing, as Docker's daemon `log-opts` fill in a container's
    /// options: a client's own `max-size`/`max-file` win (within this VCH's bounds).
    ///
    /// A default the administrator chose is shown in the options, as Docker shows its daemon's
    /// `log-opts`; the built-in one bounds the log unshown, so that a VCH nobody configured
    /// answers `docker inspect` as Docker's engine without `log-opts` does (`Config: {}`).
    pub(super) fn with_default(mut self, default: &LogConfig) -> Self {
        if self.driver() != "json-file" {
            return self;
        }
        let has = |k: &str| self.options.contains_key(k);
        match (has("max-size"), has("max-file")) {
            (false, false) if *default == Self::builtin_default() => {
                let limits = default.limits();
                self.implied_max_size = limits.max_size;
                self.implied_max_file = Some(limits.max_file);
            }
            (false, false) => {
                for (k, v) in &default.options {
                    self.options.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            (false, true) => {
                // Several files need a size worth rotating at.
                let size = default.limits().max_size.unwrap_or(MIN_ROTATED_SIZE);
                self.implied_max_size = Some(size.max(MIN_ROTATED_SIZE));
            }
            _ => {}
        }
        self
    }

    /// The driver's name (`json-file` for a record from before drivers were kept).
    pub fn driver(&self) -> &str {
        if self.driver.is_empty() {
            "json-file"
        } else {
            &self.driver
        }
    }

    /// Whether `docker logs` can read the container's output.
    pub fn readable(&self) -> bool {
        self.driver() != "none"
    }

    /// How big the monitor lets the log grow.
    pub(super) fn limits(&self) -> LogLimits {
        if !self.readable() {
            return ATTACH_BUFFER;
        }
        // Checked at create.
        self.json_file_limits().unwrap_or_default()
    }

    /// `max-size` and `max-file`, read as Docker's json-file reads them (within this VCH's
    /// bounds, [`MAX_FILES`] and [`MIN_ROTATED_SIZE`]).
    fn json_file_limits(&self) -> Result<LogLimits, EngineError> {
        let mut limits = LogLimits {
            max_size: self.implied_max_size,
            max_file: self.implied_max_file.unwrap_or(1),
        };
        if let Some(s) = self.options.get("max-size") {
            let size = human_size(s).ok_or_else(|| bad(format!("invalid size: '{s}'")))?;
            if size <= 0.0 {
                return Err(bad("max-size must be a positive number".into()));
            }
            limits.max_size = Some(size as u64);
        }
        if let Some(n) = self.options.get("max-file") {
            let n: i64 = n
                .parse()
                .map_err(|_| bad(format!("strconv.Atoi: parsing \"{n}\": invalid syntax")))?;
            if n < 1 {
                return Err(bad("max-file cannot be less than 1".into()));
            }
            // Each rotation renames every file kept: a bound keeps a chatty container from
            // costing the host's inodes and the monitor's time without end.
            if n > MAX_FILES {
                return Err(bad(format!(
                    "max-file {n} is more than this VCH keeps ({MAX_FILES}): use a larger max-size"
                )));
            }
            limits.max_file = n as u32;
        }
        if limits.max_file > 1
            && let Some(size) = limits.max_size
            && size < MIN_ROTATED_SIZE
        {
            return Err(bad(format!(
                "max-size {size} is less than this VCH rotates at ({MIN_ROTATED_SIZE} bytes) with max-file above 1"
            )));
        }
        Ok(limits)
    }
}

fn bad(message: String) -> EngineError {
    ContainerConfigError::LogOptValue(message).into()
}

fn unsupported(opt: &str) -> EngineError {
    EngineError::NotImplemented(format!(
        "this VCH does not support --log-opt {opt} (json-file): run the container without it"
    ))
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A size as Docker's `units.FromHumanSize` reads it: a decimal number, an optional space,
/// then an optional unit (k, m, g, t, p: powers of 1000, any case), `i` and `b` allowed after.
fn human_size(s: &str) -> Option<f64> {
    let digits = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, rest) = s.split_at(digits);
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest).to_ascii_lowercase();
    let mut unit = rest.as_str();
    let mut factor = 1.0;
    if let Some(c) = unit.chars().next()
        && let Some(p) = "kmgtp".find(c)
    {
        factor = 1000f64.powi(p as i32 + 1);
        unit = &unit[1..];
    }
    let unit = unit.strip_prefix('i').unwrap_or(unit);
    let unit = unit.strip_prefix('b').unwrap_or(unit);
    unit.is_empty().then_some(value * factor)
}

impl super::ContainerService {
    /// Sets the VCH's default log rotation (made by [`LogConfig::vch_default`]) for the
    /// containers created from now on; those created before keep theirs.
    pub fn set_log_default(&self, default: LogConfig) {
        if let Ok(mut d) = self.log_default.write() {
            *d = default;
        }
    }

    /// A container's log configuration with the VCH's default filled in.
    pub(super) fn with_log_default(&self, config: &LogConfig) -> LogConfig {
        match self.log_default.read() {
            Ok(d) => config.clone().with_default(&d),
            Err(_) => config.clone().with_default(&LogConfig::builtin_default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(driver: &str, opts: &[(&str, &str)]) -> Result<LogConfig, String> {
        let opts = opts
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        LogConfig::new(driver, opts).map_err(|e| e.to_string())
    }

    #[test]
    fn rotation_stays_within_bounds() {
        let err = |o: &[(&str, &str)]| config("", o).unwrap_err().to_string();
        assert!(err(&[("max-file", "101")]).contains("more than this VCH keeps"));
        assert!(err(&[("max-size", "100"), ("max-file", "2")]).contains("rotates at"));
        assert!(config("", &[("max-size", "100"), ("max-file", "1")]).is_ok());
    }

    #[test]
    fn drivers_and_options_as_docker_checks_them() {
        let c = config("", &[("max-file", "100")]).unwrap();
        assert_eq!(c.driver, "json-file");
        assert_eq!(
            c.limits(),
            LogLimits {
                max_size: None,
                max_file: 100
            }
        );
        let c = config("json-file", &[("max-size", "10k"), ("max-file", "3")]).unwrap();
        assert_eq!(
            c.limits(),
            LogLimits {
                max_size: Some(10_000),
                max_file: 3
            }
        );
        assert!(!config("none", &[("whatever", "x")]).unwrap().readable());
        assert_eq!(
            config("asdf", &[]).unwrap_err(),
            "logger: no log driver named 'asdf' is registered"
        );
        assert_eq!(
            config("json-file", &[("max-sise", "1m")]).unwrap_err(),
            "unknown log opt 'max-sise' for json-file log driver"
        );
        assert_eq!(
            config("", &[("max-size", "abc")]).unwrap_err(),
            "invalid size: 'abc'"
        );
        assert_eq!(
            config("", &[("max-size", "0")]).unwrap_err(),
            "max-size must be a positive number"
        );
        assert_eq!(
            config("", &[("max-file", "x")]).unwrap_err(),
            "strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            config("", &[("max-file", "0")]).unwrap_err(),
            "max-file cannot be less than 1"
        );
        assert!(
            config("", &[("compress", "true")])
                .unwrap_err()
                .contains("does not support")
        );
        assert!(config("", &[("compress", "false"), ("tag", "x")]).is_ok());
    }

    #[test]
    fn the_vch_default_bounds_what_the_client_left_unbounded() {
        let default = LogConfig::vch_default("2k", 3).unwrap();
        let opts = |c: &LogConfig| {
            c.options
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        // Nothing given: an administrator's default, shown as options.
        let c = config("", &[]).unwrap().with_default(&default);
        assert_eq!(opts(&c), "max-file=3,max-size=2k");
        assert_eq!(
            c.limits(),
            LogLimits {
                max_size: Some(2000),
                max_file: 3
            }
        );
        let c = config("", &[("tag", "x")]).unwrap().with_default(&default);
        assert_eq!(opts(&c), "max-file=3,max-size=2k,tag=x");
        // The client's size wins; its file count alone keeps the default size, unshown.
        let c = config("", &[("max-size", "5k")])
            .unwrap()
            .with_default(&default);
        assert_eq!(
            c.limits(),
            LogLimits {
                max_size: Some(5000),
                max_file: 1
            }
        );
        let c = config("", &[("max-file", "7")])
            .unwrap()
            .with_default(&default);
        assert_eq!(opts(&c), "max-file=7");
        assert_eq!(
            c.limits(),
            LogLimits {
                max_size: Some(2000),
                max_file: 7
            }
        );
        // A small single-file default still rotates several files at a sane size.
        let tiny = LogConfig::vch_default("100", 1).unwrap();
        let c = config("", &[("max-file", "2")])
            .unwrap()
            .with_default(&tiny);
        assert_eq!(c.limits().max_size, Some(MIN_ROTATED_SIZE));
        // The built-in default bounds the log unshown (inspect shows `{}`, as Docker's engine).
        let c = config("json-file", &[])
            .unwrap()
            .with_default(&LogConfig::builtin_default());
        assert!(c.options.is_empty());
        assert_eq!(
            c.limits(),
            LogLimits {
                max_size: Some(10_000_000),
                max_file: 5
            }
        );
        // No log, no default.
        let c = config("none", &[]).unwrap().with_default(&default);
        assert!(c.options.is_empty());
        // The built-in default is bounded and passes the client's checks.
        let b = LogConfig::builtin_default();
        assert_eq!(
            b,
            LogConfig::vch_default(DEFAULT_MAX_SIZE, DEFAULT_MAX_FILE).unwrap()
        );
        assert_eq!(
            b.limits(),
            LogLimits {
                max_size: Some(10_000_000),
                max_file: 5
            }
        );
        assert!(LogConfig::vch_default("1x", 3).is_err());
        assert!(LogConfig::vch_default("1m", 0).is_err());
    }

    #[test]
    fn human_sizes() {
        for (s, want) in [
            ("10", 10.0),
            ("10k", 10_000.0),
            ("1.5m", 1_500_000.0),
            ("2 GB", 2e9),
            ("3KiB", 3000.0),
            ("7b", 7.0),
        ] {
            assert_eq!(human_size(s), Some(want), "{s}");
        }
        for s in ["", "k", "1x", "1..2m", "-1", "1 m b"] {
            assert_eq!(human_size(s), None, "{s}");
        }
    }
}
