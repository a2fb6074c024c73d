//! The VCH's metrics in the Prometheus text format, served by the portal at `/metrics`.
//!
//! Counted as things happen: API requests by operation and status, with their latency (to the
//! response's headers: a stream's length is its client's business); refused TLS handshakes by
//! listener and reason; image pulls by registry, policy decision and result. Read at each
//! scrape: containers by state, the image store's bytes, and the days left to each
//! certificate's expiry.
//!
//! Every label value is bounded: operations are the router's path templates (never an ID or a
//! name), reasons a fixed list, registries the first [`MAX_REGISTRIES`] seen (a client chooses
//! registry names, and each name would be a series for ever).

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use vic_engine::PullOutcome;

/// Registries named in the pull counts at most; pulls from others count as `other`.
pub(crate) const MAX_REGISTRIES: usize = 64;

/// How long a measured image store size is reused: walking the layers is not free, and
/// scrapers ask every few seconds.
const STORE_SIZE_TTL: Duration = Duration::from_secs(60);

type Labels<const N: usize> = [(&'static str, String); N];

/// Latency buckets, in seconds: from a ping (sub-millisecond) to a pull or a build (minutes).
const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    120.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The endpoint's metrics: one per endpoint process, shared by the API, the portal and the
/// image service.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<Labels<2>, Counter>,
    latency: Family<Labels<1>, Histogram, fn() -> Histogram>,
    handshakes_refused: Family<Labels<2>, Counter>,
    pulls: Family<Labels<3>, Counter>,
    registries_seen: Mutex<HashSet<String>>,
    containers: Family<Labels<1>, Gauge>,
    image_store: Gauge,
    cert_expiry: Family<Labels<2>, Gauge<f64, AtomicU64>>,
    /// The last image store size, and when it was measured.
    store_size: Mutex<Option<(Instant, u64)>>,
    /// One scrape at a time: a scrape clears and refills the gauges.
    scraping: Mutex<()>,
    /// A scrape is walking the image store.
    measuring: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Why a TLS handshake was refused, as a label (a fixed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    PlainHttp,
    /// Closed before or during the handshake (a port check, a client that gave up).
    Closed,
    Timeout,
    NoCertificate,
    UnknownIssuer,
    Revoked,
    Expired,
    BadCertificate,
    Protocol,
    Other,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Self::PlainHttp => "plain_http",
            Self::Closed => "closed",
            Self::Timeout => "timeout",
            Self::NoCertificate => "no_certificate",
            Self::UnknownIssuer => "unknown_issuer",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::BadCertificate => "bad_certificate",
            Self::Protocol => "protocol",
            Self::Other => "other",
        }
    }

    /// The reason a failed `accept` gave, read from rustls' error where it is one.
    pub(crate) fn of(e: &std::io::Error) -> Self {
        use rustls::{CertificateError as C, Error as E};
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            return Self::Closed;
        }
        let Some(err) = e.get_ref().and_then(|i| i.downcast_ref::<E>()) else {
            return Self::Other;
        };
        match err {
            E::NoCertificatesPresented => Self::NoCertificate,
            E::InvalidCertificate(C::UnknownIssuer) => Self::UnknownIssuer,
            E::InvalidCertificate(C::Revoked) => Self::Revoked,
            E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => Self::Expired,
            E::InvalidCertificate(_) => Self::BadCertificate,
            E::PeerIncompatible(_)
            | E::PeerMisbehaved(_)
            | E::InappropriateHandshakeMessage { .. }
            | E::InappropriateMessage { .. }
            | E::InvalidMessage(_)
            | E::NoApplicationProtocol
            | E::AlertReceived(_)
            | E::DecryptError => Self::Protocol,
            _ => Self::Other,
        }
    }
}

/// What a scrape reads from the VCH's state, gathered off the async workers.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    /// Containers by Docker state word.
    pub(crate) containers: Vec<(&'static str, i64)>,
    /// The image store's size, if measured at this scrape.
    pub(crate) image_store_bytes: Option<u64>,
    /// `(what it is for, subject, days left)` per certificate.
    pub(crate) certificates: Vec<(String, String, f64)>,
}

/// A label value as the text format needs it: the encoder writes values as given.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let requests = Family::<Labels<2>, Counter>::default();
        let latency = Family::<Labels<1>, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let handshakes_refused = Family::<Labels<2>, Counter>::default();
        let pulls = Family::<Labels<3>, Counter>::default();
        let containers = Family::<Labels<1>, Gauge>::default();
        let image_store = Gauge::default();
        let cert_expiry = Family::<Labels<2>, Gauge<f64, AtomicU64>>::default();
        let mut registry = Registry::with_prefix("vic");
        registry.register(
            "api_requests",
            "Docker API requests by operation (method and path template) and HTTP status",
            requests.clone(),
        );
        registry.register_with_unit(
            "api_request_duration",
            "Docker API request latency to the response's headers, by operation",
            Unit::Seconds,
            latency.clone(),
        );
        registry.register(
            "tls_handshakes_refused",
            "TLS handshakes refused, by listener (api, portal) and reason",
            handshakes_refused.clone(),
        );
        registry.register(
            "image_pulls",
            "Image pulls by registry, registry policy decision and result",
            pulls.clone(),
        );
        registry.register("containers", "Containers by state", containers.clone());
        registry.register_with_unit(
            "image_store",
            "Disk used by the image store (blobs and unpacked layers)",
            Unit::Bytes,
            image_store.clone(),
        );
        registry.register(
            "certificate_expiry_days",
            "Days until each certificate the VCH serves or trusts expires (negative once expired)",
            cert_expiry.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            handshakes_refused,
            pulls,
            registries_seen: Mutex::default(),
            containers,
            image_store,
            cert_expiry,
            store_size: Mutex::default(),
            scraping: Mutex::default(),
            measuring: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Counts one API request.
    pub(crate) fn request(&self, operation: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&[
                ("operation", operation.to_owned()),
                ("status", status.to_string()),
            ])
            .inc();
        self.latency
            .get_or_create(&[("operation", operation.to_owned())])
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one refused handshake on `listener` (`api` or `portal`).
    pub(crate) fn handshake_refused(&self, listener: &'static str, why: Refusal) {
        self.handshakes_refused
            .get_or_create(&[
                ("listener", listener.to_owned()),
                ("reason", why.label().to_owned()),
            ])
            .inc();
    }

    /// Counts one pull from `registry`. A registry gets a label of its own once the policy
    /// allowed a pull from it (clients name registries at will, denied ones included: they
    /// must not take the slots of the registries in use).
    pub(crate) fn pull(&self, registry: &str, outcome: PullOutcome) {
        let registry = {
            let mut seen = self
                .registries_seen
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if seen.contains(registry) {
                escape(registry)
            } else if outcome != PullOutcome::Denied && seen.len() < MAX_REGISTRIES {
                seen.insert(registry.to_owned());
                escape(registry)
            } else {
                "other".to_owned()
            }
        };
        let (decision, result) = match outcome {
            PullOutcome::Complete => ("allowed", "complete"),
            PullOutcome::Failed => ("allowed", "failed"),
            PullOutcome::Denied => ("denied", "failed"),
        };
        self.pulls
            .get_or_create(&[
                ("registry", registry),
                ("decision", decision.to_owned()),
                ("result", result.to_owned()),
            ])
            .inc();
    }

    /// Whether this scrape measures the image store: when the last size is old and no other
    /// scrape is measuring it (each walks every file; scrapes may come many at once). The
    /// caller measures, then passes the size to [`Metrics::render`], which ends the claim.
    pub(crate) fn claim_store_measurement(&self) -> bool {
        let due = self
            .store_size
            .lock()
            .map(|s| s.is_none_or(|(at, _)| at.elapsed() >= STORE_SIZE_TTL))
            .unwrap_or(true);
        due && !self
            .measuring
            .swap(true, std::sync::atomic::Ordering::AcqRel)
    }

    /// Ends a claim of [`Metrics::claim_store_measurement`] that measured nothing.
    pub(crate) fn release_store_measurement(&self) {
        self.measuring
            .store(false, std::sync::atomic::Ordering::Release);
    }

    /// The text exposition, with the gauges set from `observed`.
    pub(crate) fn render(&self, observed: Observed) -> String {
        let _one = self.scraping.lock().unwrap_or_else(|p| p.into_inner());
        self.containers.clear();
        for (state, n) in observed.containers {
            self.containers
                .get_or_create(&[("state", state.to_owned())])
                .set(n);
        }
        let bytes = {
            let mut s = self.store_size.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(b) = observed.image_store_bytes {
                *s = Some((Instant::now(), b));
                self.measuring
                    .store(false, std::sync::atomic::Ordering::Release);
            }
            s.map_or(0, |(_, b)| b)
        };
        self.image_store
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.cert_expiry.clear();
        for (what, subject, days) in observed.certificates {
            self.cert_expiry
                .get_or_create(&[
                    ("certificate", escape(&what)),
                    ("subject", escape(&subject)),
                ])
                .set(days);
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Copies the route the router matched into the response, where the request's accounting
/// (`service::handle`) finds it.
pub(crate) async fn tag_operation(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let matched = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .cloned();
    let mut resp = next.run(req).await;
    if let Some(m) = matched {
        resp.extensions_mut().insert(m);
    }
    resp
}

/// The operation label of a request that reached no route (refused before routing, or an
/// unknown path).
pub(crate) const NO_OPERATION: &str = "none";

/// The operation label of a request: `METHOD /path/{template}` as the router matched it.
/// Image operations share one route (names hold slashes): the last segment tells them apart.
/// A method is a client's to choose (HTTP allows any token, of any length), so only the
/// standard ones name an operation: a route matched with another is [`NO_OPERATION`].
pub(crate) fn operation(method: &str, template: &str, path: &str) -> String {
    const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];
    let Some(method) = METHODS.into_iter().find(|m| *m == method) else {
        return NO_OPERATION.to_owned();
    };
    if template == "/images/{*name}" {
        let last = path.rsplit('/').next().unwrap_or_default();
        let op = match (method, last) {
            ("GET", "json" | "history") | ("POST", "push" | "tag") | ("GET", "get") => last,
            ("DELETE", _) => "",
            _ => "*",
        };
        return if op.is_empty() {
            format!("{method} /images/{{name}}")
        } else {
            format!("{method} /images/{{name}}/{op}")
        };
    }
    format!("{method} {template}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_every_family_and_escapes_labels() {
        let m = Metrics::new();
        m.request("GET /_ping", 200, Duration::from_micros(300));
        m.request("GET /_ping", 200, Duration::from_millis(2));
        m.handshake_refused("api", Refusal::UnknownIssuer);
        m.pull("registry.example:5000", PullOutcome::Denied);
        let text = m.render(Observed {
            containers: vec![("running", 2), ("exited", 1)],
            image_store_bytes: Some(4096),
            certificates: vec![("server".into(), "CN=a \"b\"\nc".into(), 12.5)],
        });
        for line in [
            "vic_api_requests_total{operation=\"GET /_ping\",status=\"200\"} 2",
            "vic_api_request_duration_seconds_bucket{le=\"0.0005\",operation=\"GET /_ping\"} 1",
            "vic_api_request_duration_seconds_count{operation=\"GET /_ping\"} 2",
            "vic_tls_handshakes_refused_total{listener=\"api\",reason=\"unknown_issuer\"} 1",
            "vic_image_pulls_total{registry=\"other\",decision=\"denied\",result=\"failed\"} 1",
            "vic_containers{state=\"running\"} 2",
            "vic_image_store_bytes 4096",
            "vic_certificate_expiry_days{certificate=\"server\",subject=\"CN=a \\\"b\\\"\\nc\"} 12.5",
        ] {
            assert!(text.contains(line), "{line} missing in:\n{text}");
        }
        // A container state gone since the last scrape is not reported any more.
        let text = m.render(Observed::default());
        assert!(!text.contains("vic_containers{state=\"exited\"}"));
        // The store size is kept between measurements.
        assert!(text.contains("vic_image_store_bytes 4096"));
    }

    #[test]
    fn registries_are_bounded() {
        let m = Metrics::new();
        // Denied pulls take no slot.
        for i in 0..MAX_REGISTRIES {
            m.pull(&format!("denied{i}.example"), PullOutcome::Denied);
        }
        for i in 0..MAX_REGISTRIES + 10 {
            m.pull(&format!("r{i}.example"), PullOutcome::Complete);
        }
        m.pull("r0.example", PullOutcome::Complete);
        let text = m.render(Observed::default());
        assert_eq!(
            text.matches("vic_image_pulls_total{").count(),
            // The allowed registries, `other` for the rest allowed and for the denied ones.
            MAX_REGISTRIES + 2
        );
        assert!(text.contains(
            "vic_image_pulls_total{registry=\"other\",decision=\"allowed\",result=\"complete\"} 10"
        ));
        assert!(text.contains(
            "vic_image_pulls_total{registry=\"r0.example\",decision=\"allowed\",result=\"complete\"} 2"
        ));
    }

    #[test]
    fn image_operations_are_told_apart_by_their_last_segment() {
        let t = "/images/{*name}";
        assert_eq!(
            operation("GET", t, "/images/library/busybox/json"),
            "GET /images/{name}/json"
        );
        assert_eq!(
            operation("DELETE", t, "/images/a/b"),
            "DELETE /images/{name}"
        );
        assert_eq!(
            operation("GET", t, "/images/a/weird"),
            "GET /images/{name}/*"
        );
        // A method of the client's making names no operation.
        assert_eq!(
            operation(&"A".repeat(5000), "/_ping", "/_ping"),
            NO_OPERATION
        );
        assert_eq!(
            operation("POST", "/containers/{id}/start", "/containers/abc/start"),
            "POST /containers/{id}/start"
        );
    }
}
