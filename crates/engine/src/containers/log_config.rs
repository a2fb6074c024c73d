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
    /// The options as given (`--log-opt`).
    pub options: BTreeMap<String, String>,
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
        let mut limits = LogLimits::default();
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
