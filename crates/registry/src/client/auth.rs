//! Registry authentication: the `WWW-Authenticate` challenge answered with a bearer token from
//! the registry's token service or with basic credentials, and `docker login`'s check.

use super::*;

impl RegistryClient {
    /// The `Authorization` value that answers `challenge` (a `WWW-Authenticate` header) for
    /// `scope`: a bearer token fetched from the registry's token service, or basic credentials.
    pub(super) async fn answer_challenge(
        &self,
        registry: &str,
        challenge: &str,
        scope: &str,
        creds: Option<&Credentials>,
    ) -> Result<String, RegistryError> {
        let auth = match parse_challenge(challenge) {
            Some(Challenge::Bearer { realm, service }) => {
                let token = self
                    .fetch_token(registry, &realm, service.as_deref(), scope, creds)
                    .await?;
                format!("Bearer {token}")
            }
            Some(Challenge::Basic) => match creds {
                Some(c) => basic(c),
                None => {
                    return Err(RegistryError::Unauthorized {
                        registry: registry.to_owned(),
                        detail: "authentication required".into(),
                    });
                }
            },
            None => {
                return Err(RegistryError::Unauthorized {
                    registry: registry.to_owned(),
                    detail: format!("unsupported challenge {challenge:?}"),
                });
            }
        };
        Ok(auth)
    }

    async fn fetch_token(
        &self,
        registry: &str,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        creds: Option<&Credentials>,
    ) -> Result<String, RegistryError> {
        let bad = |reason: String| RegistryError::Unauthorized {
            registry: registry.to_owned(),
            detail: reason,
        };
        let (scheme, rest) = realm
            .split_once("://")
            .ok_or_else(|| bad(format!("token realm {realm:?} is not a URL")))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let mut query = Vec::new();
        if let Some(s) = service {
            query.push(format!("service={}", encode(s)));
        }
        if !scope.is_empty() {
            query.push(format!("scope={}", encode(scope)));
        }
        let sep = if path.contains('?') { '&' } else { '?' };
        let target = if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}{sep}{}", query.join("&"))
        };
        // The realm is the registry's own auth service: it is reached under the registry's
        // admission, with the registry's insecure setting only when it is the same host.
        let same_host = authority == registry || authority == api_host(registry);
        if scheme == "http"
            && !(same_host
                && self.settings.policy.is_insecure(&RegistryTarget::new(
                    &crate::reference::split_host_port(registry).0,
                    crate::reference::split_host_port(registry).1,
                )))
        {
            return Err(bad(format!(
                "token realm {realm} is plain HTTP: refusing to send credentials there"
            )));
        }
        let auth = creds.map(basic);
        let (resp, _) = self
            .send_once(
                authority,
                &Method::GET,
                &target,
                &[],
                auth.as_deref(),
                empty_body(),
            )
            .await?;
        let status = resp.status();
        let body = http_body_util::Limited::new(resp.into_body(), 1 << 20)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if !status.is_success() {
            return Err(bad(format!(
                "token service answered {status}: {}",
                String::from_utf8_lossy(&body).trim()
            )));
        }
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let t: Token =
            serde_json::from_slice(&body).map_err(|e| bad(format!("bad token response: {e}")))?;
        t.token
            .or(t.access_token)
            .ok_or_else(|| bad("token response without a token".into()))
    }

    /// Checks credentials against a registry (`docker login`): `GET /v2/` with them.
    pub async fn login(&self, registry: &str, creds: &Credentials) -> Result<(), RegistryError> {
        let resp = self
            .request(
                registry,
                Method::GET,
                "/v2/",
                &[],
                "",
                Some(creds),
                &empty_body,
            )
            .await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(RegistryError::Status {
                registry: registry.to_owned(),
                status: resp.status().as_u16(),
                message: error_message(resp).await.unwrap_or_default(),
            })
        }
    }
}

enum Challenge {
    Bearer {
        realm: String,
        service: Option<String>,
    },
    Basic,
}

fn parse_challenge(h: &str) -> Option<Challenge> {
    let (kind, params) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
    let mut map = HashMap::new();
    for part in split_params(params) {
        if let Some((k, v)) = part.split_once('=') {
            map.insert(
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_owned(),
            );
        }
    }
    match kind.to_ascii_lowercase().as_str() {
        "bearer" => Some(Challenge::Bearer {
            realm: map.remove("realm")?,
            service: map.remove("service"),
        }),
        "basic" => Some(Challenge::Basic),
        _ => None,
    }
}

/// Splits `a="x,y",b=z` on commas outside quotes.
fn split_params(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn basic(c: &Credentials) -> String {
    let raw = format!("{}:{}", c.username, c.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let Some(Challenge::Bearer { realm, service }) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        ) else {
            panic!()
        };
        assert_eq!(realm, "https://auth.docker.io/token");
        assert_eq!(service.as_deref(), Some("registry.docker.io"));
        assert!(matches!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        ));
        assert!(parse_challenge("Negotiate").is_none());
        assert_eq!(encode("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
        let c = Credentials {
            username: "u".into(),
            password: "p".into(),
        };
        assert_eq!(basic(&c), "Basic dTpw");
        let secret = Credentials {
            username: "u".into(),
            password: "s3cret-pass".into(),
        };
        assert!(
            !format!("{secret:?}").contains("s3cret-pass"),
            "Debug shows the password"
        );
    }
}
