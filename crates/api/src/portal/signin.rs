//! Signing in: a client certificate by itself, or the admin password through a login form
//! with a one-use token, failures budgeted per address; sessions by cookie.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::*;

/// The session's user, when the request carries a live session cookie issued to this address.
pub(super) fn session_user(
    state: &PortalState,
    req: &Request<Incoming>,
    client: IpAddr,
) -> Option<String> {
    let token = cookie(req, "vic_session")?;
    let mut sessions = state.sessions.lock().ok()?;
    let now = Instant::now();
    sessions.retain(|_, s| s.expires > now);
    let current = state.password_hash();
    let s = sessions.get_mut(&token)?;
    if s.client != client || current.as_deref() != Some(s.hash.as_str()) {
        return None;
    }
    s.expires = now + state.settings.session_idle;
    Some("admin (password)".to_owned())
}

/// A sign-in form's token: when it expires, and whose budget it counts against.
#[derive(Debug, Clone, Copy)]
pub(super) struct FormToken {
    expires: Instant,
    budget: IpAddr,
}

/// Sign-in forms one address (an IPv6 /64) may hold at once.
pub(super) const FORMS_PER_ADDRESS: usize = 16;

/// Keeps a new sign-in form's token for 10 minutes. Anyone who reaches the port can ask for
/// forms: an address keeps its [`FORMS_PER_ADDRESS`] newest, and past [`MAX_FORM_TOKENS`] in
/// all the oldest makes room, so one address cannot crowd out the administrator's form.
pub(super) fn remember_form_token(
    tokens: &mut HashMap<String, FormToken>,
    token: String,
    budget: IpAddr,
    now: Instant,
) {
    tokens.retain(|_, t| t.expires > now);
    let oldest = |tokens: &HashMap<String, FormToken>, of: Option<IpAddr>| {
        tokens
            .iter()
            .filter(|(_, t)| of.is_none_or(|b| t.budget == b))
            .min_by_key(|(_, t)| t.expires)
            .map(|(k, _)| k.clone())
    };
    while tokens.values().filter(|t| t.budget == budget).count() >= FORMS_PER_ADDRESS {
        let Some(k) = oldest(tokens, Some(budget)) else {
            break;
        };
        tokens.remove(&k);
    }
    while tokens.len() >= MAX_FORM_TOKENS {
        let Some(k) = oldest(tokens, None) else {
            break;
        };
        tokens.remove(&k);
    }
    tokens.insert(
        token,
        FormToken {
            expires: now + Duration::from_secs(600),
            budget,
        },
    );
}

pub(super) fn login_page(
    state: &PortalState,
    remote: IpAddr,
    error: Option<&str>,
    status: StatusCode,
) -> Response<Body> {
    let token = vic_pki::random_hex(16);
    if let Ok(mut c) = state.csrf.lock() {
        remember_form_token(
            &mut c,
            token.clone(),
            attempt_budget(remote),
            Instant::now(),
        );
    }
    let facts = state.app.facts();
    let note = if state.password_hash().is_some() {
        "Sign in with the admin password printed by <code>vic-machine create</code>, or with the VCH's client certificate (<code>cert.pfx</code>) imported into your browser."
    } else {
        "This VCH signs in with its client certificate only: import <code>cert.pfx</code> from its certificate folder into your browser, then reload."
    };
    let form = if state.password_hash().is_some() {
        format!(
            "<form method=\"post\" action=\"/login\"><input type=\"hidden\" name=\"csrf\" value=\"{token}\"><label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" autofocus required></label><button type=\"submit\">Sign in</button></form>"
        )
    } else {
        String::new()
    };
    let error = error
        .map(|e| format!("<p class=\"bad\">{}</p>", esc(e)))
        .unwrap_or_default();
    html(
        status,
        "Sign in",
        &format!(
            "<section class=\"card narrow\"><h2>Sign in to {}</h2>{error}<p>{note}</p>{form}</section>",
            esc(&facts.name)
        ),
    )
}

/// Whose budget of sign-in attempts an address spends: its own for IPv4, its /64's for IPv6
/// (a single host holds a whole /64 and could otherwise try from each address).
pub(super) fn attempt_budget(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !((1u128 << 64) - 1),
            )),
        },
        v4 => v4,
    }
}

pub(super) async fn login(
    state: &PortalState,
    remote: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    use http_body_util::BodyExt;
    let ip = remote.ip();
    let budget = attempt_budget(ip);
    let body = match http_body_util::Limited::new(req.into_body(), 8 * 1024)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return html(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Sign in",
                "<p>Request too large.</p>",
            );
        }
    };
    let form: HashMap<String, String> = form_urlencoded(&body);
    let csrf_ok = form.get("csrf").is_some_and(|t| {
        state
            .csrf
            .lock()
            .is_ok_and(|mut c| c.remove(t).is_some_and(|f| f.expires > Instant::now()))
    });
    if !csrf_ok {
        state.refuse(format!(
            "login from {ip} refused: missing or stale form token"
        ));
        return login_page(
            state,
            ip,
            Some("The sign-in form expired or did not come from this portal: try again."),
            StatusCode::FORBIDDEN,
        );
    }
    let limited = state.failures.lock().is_ok_and(|mut f| {
        let now = Instant::now();
        // Addresses whose failures are all old are forgotten: the map stays small.
        f.retain(|_, q| {
            q.back()
                .is_some_and(|t| now.duration_since(*t) <= FAIL_WINDOW)
        });
        // So many addresses failing at once is an attack from many: the one whose last try
        // is oldest is forgotten (password checks stay few at a time whatever this holds).
        while f.len() >= MAX_FAILING_ADDRESSES && !f.contains_key(&budget) {
            let Some(k) = f
                .iter()
                .min_by_key(|(_, q)| q.back().copied())
                .map(|(k, _)| *k)
            else {
                break;
            };
            f.remove(&k);
        }
        let q = f.entry(budget).or_default();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) > FAIL_WINDOW)
        {
            q.pop_front();
        }
        if q.len() >= MAX_FAILURES {
            return true;
        }
        // Counted now, before the password is checked (and in the same lock as the check):
        // attempts sent in parallel all count.
        // A success takes its count back.
        q.push_back(now);
        false
    });
    if limited {
        state.refuse(format!("login from {ip} refused: too many failed attempts"));
        return login_page(
            state,
            ip,
            Some("Too many failed attempts from your address: wait a minute."),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let hash = state.password_hash().unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    // argon2 takes its time (and memory) on purpose: off the async workers, a few at a time.
    let checked = hash.clone();
    let ok = match state.checking.acquire().await {
        Ok(_permit) => tokio::task::spawn_blocking(move || {
            !checked.is_empty() && vic_pki::verify_password(&password, &checked)
        })
        .await
        .unwrap_or(false),
        Err(_) => false,
    };
    if !ok {
        state.refuse(format!("login from {ip} refused: wrong password"));
        return login_page(state, ip, Some("Wrong password."), StatusCode::UNAUTHORIZED);
    }
    if let Ok(mut f) = state.failures.lock()
        && let Some(q) = f.get_mut(&budget)
    {
        q.pop_back();
    }
    let token = vic_pki::random_hex(32);
    if let Ok(mut s) = state.sessions.lock() {
        s.insert(
            token.clone(),
            Session {
                client: ip,
                expires: Instant::now() + state.settings.session_idle,
                hash,
            },
        );
    }
    tracing::info!(target: "portal", %ip, "admin signed in with the password");
    let mut r = redirect("/");
    if let Ok(v) = HeaderValue::from_str(&format!(
        "vic_session={token}; Path=/; Max-Age={}; Secure; HttpOnly; SameSite=Strict",
        state.settings.session_idle.as_secs()
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `application/x-www-form-urlencoded` fields.
pub(super) fn form_urlencoded(body: &[u8]) -> HashMap<String, String> {
    // Lossy like a browser's own decoding: a bad escape stays as it was.
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .unwrap_or_default()
        .into_iter()
        .collect()
}
