//! `GET /metrics`: the VCH's metrics for Prometheus, to a client certificate of the VCH, a
//! signed-in session, or a bearer token from `vic-machine metrics token create`.

use std::collections::BTreeMap;

use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::{Body, PortalState, response};
use crate::metrics::Observed;
use crate::metrics_tokens::{TOKENS_FILE, verify};

/// The exposition format's content type (Prometheus text format 0.0.4).
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Container states reported even when no container is in them (a series that comes and
/// goes reads as missing data, not as zero).
const STATES: [&str; 5] = ["created", "running", "paused", "exited", "dead"];

/// The bearer token of an `Authorization` header, if it has one.
pub(super) fn bearer<B>(req: &Request<B>) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// The name of the metrics token `presented` is, if the VCH accepts it (the file is read on a
/// blocking thread).
pub(super) async fn token_name(state: &PortalState, presented: String) -> Option<String> {
    let file = state.settings.state_dir.join(TOKENS_FILE);
    tokio::task::spawn_blocking(move || verify(&file, &presented))
        .await
        .ok()
        .flatten()
}

/// The answer to a scrape without any credential the portal accepts: 401 with the scheme to
/// use (a scraper is not sent to the login page).
pub(super) fn unauthorized(bad_token: bool) -> Response<Body> {
    let why = if bad_token {
        "this bearer token is not one of this VCH's metrics tokens (it may have been revoked)"
    } else {
        "metrics need a client certificate of this VCH, a signed-in portal session, or a bearer token"
    };
    let mut r = response(
        StatusCode::UNAUTHORIZED,
        "text/plain; charset=utf-8",
        format!(
            "{why}: an administrator makes tokens with `vic-machine metrics token create --name VCH --token-name NAME`\n"
        ),
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"vic metrics\""),
    );
    r
}

/// The metrics, read now.
pub(super) async fn scrape(state: &PortalState) -> Response<Body> {
    let app = state.app.clone();
    let measure_store = app.metrics.claim_store_measurement();
    let observed = crate::error::blocking(move || {
        let mut states: BTreeMap<&'static str, i64> = STATES.iter().map(|s| (*s, 0)).collect();
        for c in app.containers.list(true) {
            *states.entry(c.status.word()).or_default() += 1;
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut certificates = Vec::new();
        for (what, path) in &app.facts().certificates {
            let Ok(bundle) = vic_pki::load_bundle(path) else {
                continue;
            };
            for s in bundle
                .certs
                .iter()
                .filter_map(|c| vic_pki::summarize(c).ok())
            {
                let days = (s.not_after - now) as f64 / 86_400.0;
                certificates.push((what.clone(), s.subject, (days * 100.0).round() / 100.0));
            }
        }
        Ok(Observed {
            containers: states.into_iter().collect(),
            image_store_bytes: measure_store.then(|| app.images.store_bytes()),
            certificates,
        })
    })
    .await;
    if observed.is_err() && measure_store {
        state.app.metrics.release_store_measurement();
    }
    // Encoding walks every series: off the async workers too.
    let app = state.app.clone();
    let text = match observed {
        Ok(observed) => crate::error::blocking(move || Ok(app.metrics.render(observed))).await,
        Err(e) => Err(e),
    };
    match text {
        Ok(text) => response(StatusCode::OK, CONTENT_TYPE, text),
        Err(e) => response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            format!("metrics could not be read: {e}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        let req = |v: &str| {
            Request::builder()
                .header(header::AUTHORIZATION, v)
                .body(())
                .unwrap()
        };
        assert_eq!(bearer(&req("Bearer vicm_ab")).as_deref(), Some("vicm_ab"));
        assert_eq!(bearer(&req("bearer  vicm_ab ")).as_deref(), Some("vicm_ab"));
        assert_eq!(bearer(&req("Basic dXNlcjpwYXNz")), None);
        assert_eq!(bearer(&Request::builder().body(()).unwrap()), None);
    }
}
