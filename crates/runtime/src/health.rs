//! Docker's healthchecks, the parts both sides share: the check as configured
//! ([`HealthConfig`], Docker's `Config.Healthcheck`, merged with the image's as Docker does),
//! what the monitor is told to run ([`HealthProbe`]), and the state it records after each
//! check ([`Health`], Docker's `State.Health`, in [`crate::monitor::MonitorFiles::health`]).
//! The rules of the state machine live here, as pure functions, so they are tested without a
//! container.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Docker's default interval and timeout between and of checks.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Docker's default timeout of one check.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Docker's default number of failures in a row that make a container unhealthy.
pub const DEFAULT_RETRIES: u32 = 3;
/// How many results `State.Health.Log` keeps (Docker's `maxLogEntries`).
pub const MAX_LOG_ENTRIES: usize = 5;
/// The longest output kept of one check (Docker's `maxOutputLen`).
pub const MAX_OUTPUT: usize = 4096;

/// `Config.Healthcheck`: durations in nanoseconds, 0 meaning "inherit" (then Docker's
/// default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    /// `[]` inherit, `["NONE"]` no check, `["CMD", args...]`, `["CMD-SHELL", command]`.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_empty"
    )]
    pub test: Vec<String>,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_as_zero")]
    pub interval: i64,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_as_zero")]
    pub timeout: i64,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_as_zero")]
    pub start_period: i64,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_as_zero")]
    pub retries: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Images and clients write `null` for what they were not given.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// docker-compose sends `null` for what it was not given.
fn null_as_zero<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(Option::<i64>::deserialize(d)?.unwrap_or(0))
}

impl HealthConfig {
    /// The check of a container: the request's, each field unset there taken from the image's
    /// (Docker's `merge` of the create config with the image config).
    pub fn merge(image: Option<&Self>, request: Option<&Self>) -> Option<Self> {
        let Some(req) = request else {
            return image.cloned();
        };
        let Some(img) = image else {
            return Some(req.clone());
        };
        let pick = |a: i64, b: i64| if a == 0 { b } else { a };
        Some(Self {
            test: if req.test.is_empty() {
                img.test.clone()
            } else {
                req.test.clone()
            },
            interval: pick(req.interval, img.interval),
            timeout: pick(req.timeout, img.timeout),
            start_period: pick(req.start_period, img.start_period),
            retries: pick(req.retries, img.retries),
        })
    }

    /// The command a check runs, `None` when there is no check (`NONE`, or nothing at all).
    pub fn command(&self) -> Option<Vec<String>> {
        match self.test.split_first() {
            Some((kind, args)) if kind == "CMD" && !args.is_empty() => Some(args.to_vec()),
            Some((kind, [line])) if kind == "CMD-SHELL" => {
                Some(vec!["/bin/sh".into(), "-c".into(), line.clone()])
            }
            _ => None,
        }
    }

    /// The probe for the monitor, with Docker's defaults for what is unset.
    pub fn probe(&self, user: String, cwd: String, env: Vec<String>) -> Option<HealthProbe> {
        let dur = |ns: i64, default: Duration| {
            u64::try_from(ns)
                .ok()
                .filter(|n| *n > 0)
                .map_or(default, Duration::from_nanos)
        };
        Some(HealthProbe {
            cmd: self.command()?,
            user,
            cwd,
            env,
            interval_ms: dur(self.interval, DEFAULT_INTERVAL).as_millis() as u64,
            timeout_ms: dur(self.timeout, DEFAULT_TIMEOUT).as_millis() as u64,
            start_period_ms: dur(self.start_period, Duration::ZERO).as_millis() as u64,
            retries: u32::try_from(self.retries)
                .ok()
                .filter(|r| *r > 0)
                .unwrap_or(DEFAULT_RETRIES),
        })
    }
}

/// What the monitor runs and how often: the command already resolved (a shell line is
/// `/bin/sh -c LINE`), the user as `UID:GID` (resolved by the endpoint in the container's own
/// user database), and the timings with the defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthProbe {
    pub cmd: Vec<String>,
    pub user: String,
    pub cwd: String,
    pub env: Vec<String>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub start_period_ms: u64,
    pub retries: u32,
}

impl HealthProbe {
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
    pub fn start_period(&self) -> Duration {
        Duration::from_millis(self.start_period_ms)
    }
}

/// `State.Health.Status`.
pub const STARTING: &str = "starting";
/// `State.Health.Status` once a check passed.
pub const HEALTHY: &str = "healthy";
/// `State.Health.Status` after `retries` failures in a row.
pub const UNHEALTHY: &str = "unhealthy";

/// `State.Health`, as the monitor records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<HealthResult>,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            status: STARTING.to_owned(),
            failing_streak: 0,
            log: Vec::new(),
        }
    }
}

/// One check's result (`State.Health.Log[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthResult {
    /// RFC 3339.
    pub start: String,
    pub end: String,
    /// -1 when the check could not run or exceeded its timeout.
    pub exit_code: i32,
    pub output: String,
}

impl Health {
    /// Records one check (Docker's `handleProbeResult`): a pass makes the container healthy
    /// and ends the failing streak, also within the start period; a failure within the start
    /// period, while still starting, does not count; otherwise it lengthens the streak, and
    /// `retries` in a row make the container unhealthy. The log keeps the last
    /// [`MAX_LOG_ENTRIES`], each output cut to [`MAX_OUTPUT`] bytes.
    pub fn record(&mut self, mut result: HealthResult, in_start_period: bool, retries: u32) {
        truncate(&mut result.output, MAX_OUTPUT);
        if result.exit_code == 0 {
            self.failing_streak = 0;
            self.status = HEALTHY.to_owned();
        } else if !(in_start_period && self.status == STARTING) {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = UNHEALTHY.to_owned();
            }
        }
        self.log.push(result);
        let extra = self.log.len().saturating_sub(MAX_LOG_ENTRIES);
        self.log.drain(..extra);
    }
}

/// Cuts `s` to at most `max` bytes, on a character boundary.
fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(code: i32) -> HealthResult {
        HealthResult {
            start: "s".into(),
            end: "e".into(),
            exit_code: code,
            output: format!("code {code}"),
        }
    }

    #[test]
    fn failures_count_after_the_start_period_up_to_retries() {
        let mut h = Health::default();
        h.record(result(1), false, 3);
        h.record(result(1), false, 3);
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 2));
        h.record(result(1), false, 3);
        assert_eq!((h.status.as_str(), h.failing_streak), (UNHEALTHY, 3));
        h.record(result(0), false, 3);
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 0));
        h.record(result(2), false, 3);
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 1));
    }

    #[test]
    fn start_period_failures_do_not_count_but_a_pass_does() {
        let mut h = Health::default();
        for _ in 0..5 {
            h.record(result(1), true, 1);
        }
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 0));
        h.record(result(0), true, 1);
        assert_eq!(h.status, HEALTHY);
        // Once healthy, a failure counts even within the start period (Docker's rule).
        h.record(result(1), true, 1);
        assert_eq!((h.status.as_str(), h.failing_streak), (UNHEALTHY, 1));
    }

    #[test]
    fn log_keeps_the_last_five_and_cuts_output() {
        let mut h = Health::default();
        for code in 0..7 {
            h.record(result(code), false, 100);
        }
        let codes: Vec<i32> = h.log.iter().map(|r| r.exit_code).collect();
        assert_eq!(codes, [2, 3, 4, 5, 6]);
        let mut long = result(0);
        long.output = "é".repeat(MAX_OUTPUT);
        h.record(long, false, 3);
        let out = &h.log[MAX_LOG_ENTRIES - 1].output;
        assert_eq!(out.len(), MAX_OUTPUT);
        let mut odd = result(0);
        odd.output = format!("a{}", "é".repeat(MAX_OUTPUT));
        h.record(odd, false, 3);
        assert_eq!(h.log[MAX_LOG_ENTRIES - 1].output.len(), MAX_OUTPUT - 1);
    }

    #[test]
    fn request_fields_override_the_image_one_by_one() {
        let image = HealthConfig {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval: 5,
            timeout: 6,
            start_period: 7,
            retries: 8,
        };
        let req = HealthConfig {
            interval: 1,
            retries: 2,
            ..Default::default()
        };
        let merged = HealthConfig::merge(Some(&image), Some(&req)).unwrap();
        assert_eq!(
            merged,
            HealthConfig {
                test: image.test.clone(),
                interval: 1,
                timeout: 6,
                start_period: 7,
                retries: 2,
            }
        );
        assert_eq!(HealthConfig::merge(Some(&image), None), Some(image.clone()));
        assert_eq!(HealthConfig::merge(None, Some(&req)), Some(req.clone()));
        assert_eq!(HealthConfig::merge(None, None), None);
        // `--no-healthcheck` turns the image's check off.
        let none = HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        };
        let off = HealthConfig::merge(Some(&image), Some(&none)).unwrap();
        assert_eq!(off.command(), None);
    }

    #[test]
    fn commands_and_defaults() {
        let shell = HealthConfig {
            test: vec!["CMD-SHELL".into(), "test -f /x".into()],
            ..Default::default()
        };
        assert_eq!(shell.command().unwrap(), ["/bin/sh", "-c", "test -f /x"]);
        let exec = HealthConfig {
            test: vec!["CMD".into(), "true".into(), "x".into()],
            interval: 1_000_000_000,
            ..Default::default()
        };
        let p = exec.probe("0:0".into(), "/".into(), Vec::new()).unwrap();
        assert_eq!(p.cmd, ["true", "x"]);
        assert_eq!(p.interval(), Duration::from_secs(1));
        assert_eq!(p.timeout(), DEFAULT_TIMEOUT);
        assert_eq!(p.start_period(), Duration::ZERO);
        assert_eq!(p.retries, DEFAULT_RETRIES);
        assert_eq!(HealthConfig::default().command(), None);
        let json: HealthConfig =
            serde_json::from_str(r#"{"Test":["CMD","true"],"Interval":1000000000}"#).unwrap();
        assert_eq!(json.interval, 1_000_000_000);
        let nulls: HealthConfig =
            serde_json::from_str(r#"{"Test":null,"StartPeriod":null}"#).unwrap();
        assert_eq!((nulls.start_period, nulls.test.len()), (0, 0));
    }
}
