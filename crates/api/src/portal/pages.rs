//! The pages: the dashboard (the VCH's facts, certificates, registries), logs (the endpoint's
//! and each container's) and the support bundle.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use super::*;

/// The last `LOG_TAIL` bytes of log `path`, from a line start: when the log was just rotated
/// (the endpoint's, by size, to `path.1`), the rest from the file before it.
pub(super) fn tail(path: &Path) -> String {
    let (mut buf, mut cut) = tail_bytes(path, LOG_TAIL);
    let wanted = LOG_TAIL.saturating_sub(buf.len() as u64);
    if !cut && wanted > 0 {
        let mut older = path.as_os_str().to_owned();
        older.push(".1");
        let (mut before, older_cut) = tail_bytes(Path::new(&older), wanted);
        if !before.is_empty() {
            before.append(&mut buf);
            buf = before;
            cut = older_cut;
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    if cut {
        text.split_once('\n')
            .map(|(_, rest)| rest.to_owned())
            .unwrap_or(text)
    } else {
        text
    }
}

/// The last `n` bytes of `path`, and whether that is less than the whole file.
fn tail_bytes(path: &Path, n: u64) -> (Vec<u8>, bool) {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return (Vec::new(), false);
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(n);
    let _ = f.seek(SeekFrom::Start(start));
    let mut buf = Vec::new();
    let _ = f.take(n).read_to_end(&mut buf);
    (buf, start > 0)
}

/// The last `LOG_LINES` lines of a container's log as plain text, read by the engine.
pub(super) fn container_log_text(containers: &vic_engine::ContainerService, id: &str) -> String {
    let mut lines = Vec::new();
    if containers
        .inspect(id)
        .is_ok_and(|v| !v.record.log_config.readable())
    {
        return "configured logging driver does not support reading".into();
    }
    if let Ok(mut cursor) = containers.log_tail(id, LOG_LINES) {
        // The tail may begin in a rotated file: read on to the end of the log.
        while let Ok((more, true)) = containers.read_log(id, &mut cursor) {
            lines.extend(more);
        }
    }
    lines
        .iter()
        .map(|l| format!("{} {} {}", l.time, l.stream, l.log.trim_end()))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(super) fn logs_page(state: &PortalState, which: Option<&str>) -> Response<Body> {
    let containers = state.app.containers.list(true);
    let mut nav =
        String::from("<ul class=\"list\"><li><a href=\"/logs/endpoint\">endpoint</a></li>");
    for v in &containers {
        let _ = write!(
            nav,
            "<li><a href=\"/logs/{id}\">{name}</a> <span class=\"dim\">{status}</span></li>",
            id = esc(&v.record.id),
            name = esc(&v.record.name),
            status = esc(v.status.word()),
        );
    }
    nav.push_str("</ul>");
    let (title, text) = match which {
        None | Some("endpoint") => ("endpoint".to_owned(), tail(&state.settings.log)),
        Some(id) => match containers.iter().find(|v| v.record.id == id) {
            Some(v) => (
                v.record.name.clone(),
                container_log_text(&state.app.containers, &v.record.id),
            ),
            None => return html(StatusCode::NOT_FOUND, "Logs", "<p>No such container.</p>"),
        },
    };
    let mut r = html(
        StatusCode::OK,
        "Logs",
        &format!(
            "<div class=\"cols\"><section class=\"card\"><h2>Logs</h2>{nav}<p><a href=\"/bundle.tar.gz\">Download the log bundle</a></p></section><section class=\"card wide\"><h2>{}</h2><p class=\"dim\">The last 64 KiB; this page refreshes every 5 seconds.</p><pre>{}</pre></section></div>",
            esc(&title),
            esc(&text)
        ),
    );
    // Live tail without scripts: the browser reloads the page.
    r.headers_mut()
        .insert("refresh", HeaderValue::from_static("5"));
    r
}

/// Days until the PEM certificate at `path` expires, with its subject.
pub(super) fn certificate_line(role: &str, path: &Path) -> Option<(String, i64)> {
    let bundle = vic_pki::load_bundle(path).ok()?;
    let cert = bundle.certs.first()?;
    let s = vic_pki::summarize(cert).ok()?;
    let days = vic_pki::days_left(
        s.not_after,
        time::OffsetDateTime::now_utc().unix_timestamp(),
    );
    Some((format!("{role}: {}", s.subject), days))
}

/// PEM text of certificates (public material only: this never sees a key).
fn certificates_pem(certs: &[vic_pki::CertificateDer<'_>]) -> String {
    use base64::Engine as _;
    let mut out = String::new();
    for der in certs {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

/// `GET /certificates/ca.pem` (what verifies the server: the chain that issued its certificate)
/// and `/certificates/server-cert.pem` (the server's certificate), as files to save. Only the
/// certificates of the files are sent, never a key.
pub(super) fn certificate_download(state: &PortalState, ca: bool) -> Response<Body> {
    let facts = state.app.facts();
    let certs_of = |role: &str| {
        facts
            .certificates
            .iter()
            .find(|(r, _)| r == role)
            .and_then(|(_, p)| vic_pki::load_bundle(p).ok())
            .map(|b| b.certs)
            .unwrap_or_default()
    };
    let server = certs_of("server");
    let Some(leaf) = server.first() else {
        return html(
            StatusCode::NOT_FOUND,
            "Certificates",
            "<p>This VCH serves without TLS: it has no certificate.</p>",
        );
    };
    let (certs, name) = if ca {
        match vic_pki::issuing_chain(&server, &certs_of("client CA")) {
            Some(chain) => (chain, "ca.pem"),
            None => {
                return html(
                    StatusCode::NOT_FOUND,
                    "Certificates",
                    "<p>This VCH does not know what issued its server certificate (it was given without its chain): ask its administrator for that CA.</p>",
                );
            }
        }
    } else {
        (vec![leaf.clone()], "server-cert.pem")
    };
    let mut r = response(
        StatusCode::OK,
        "application/x-pem-file",
        certificates_pem(&certs),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// Whether each registry named in the policy (insecure and whitelisted hosts; not CIDRs or
/// wildcards) accepts a TCP connection within a second, all checked at once.
pub(super) async fn registry_checks(facts: &crate::VchFacts) -> Vec<(String, bool)> {
    let mut names: Vec<String> = facts
        .insecure_registries
        .iter()
        .chain(&facts.whitelist)
        .filter(|e| !e.contains('/') && !e.contains('*'))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    let checks = names.into_iter().map(|name| async move {
        let target = if name
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            name.clone()
        } else {
            format!("{name}:443")
        };
        let ok = tokio::time::timeout(
            Duration::from_secs(1),
            tokio::net::TcpStream::connect(target),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        (name, ok)
    });
    futures_util::future::join_all(checks).await
}

pub(super) fn dashboard(
    state: &PortalState,
    who: &str,
    registries: &[(String, bool)],
) -> Response<Body> {
    let facts = state.app.facts();
    let containers = state.app.containers.list(true);
    let running = containers
        .iter()
        .filter(|v| matches!(v.status, vic_engine::Status::Running { .. }))
        .count();
    let images = state.app.images.list().map(|l| l.len()).unwrap_or(0);
    let uptime = state.started.elapsed().as_secs();
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default();
    let disk = vic_engine::disk_usage(&state.settings.state_dir);
    let mut certs = String::new();
    for (role, path) in &facts.certificates {
        if let Some((line, days)) = certificate_line(role, path) {
            let class = if days <= vic_pki::EXPIRY_WARNING_DAYS {
                "bad"
            } else {
                "ok"
            };
            let warn = if days <= vic_pki::EXPIRY_WARNING_DAYS {
                " — renew soon (vic-machine configure)"
            } else {
                ""
            };
            let _ = write!(
                certs,
                "<li>{} <span class=\"{class}\">expires in {days} days{warn}</span></li>",
                esc(&line)
            );
        }
    }
    // Links only: the files hold no secret, but like every page they need a signed-in client.
    let downloads = if facts.certificates.iter().any(|(r, _)| r == "server") {
        "<p>Download: <a href=\"/certificates/ca.pem\" download>CA (ca.pem)</a> · <a href=\"/certificates/server-cert.pem\" download>server certificate (server-cert.pem)</a></p>"
    } else {
        ""
    };
    let mut nets = String::new();
    for n in state.app.networks.list() {
        let level = n
            .external
            .as_ref()
            .map(|s| format!("firewall {}", s.firewall))
            .unwrap_or_else(|| "bridge".to_owned());
        let _ = write!(
            nets,
            "<li>{} <span class=\"dim\">{} · {}</span></li>",
            esc(&n.name),
            esc(&n.subnet.to_string()),
            esc(&level)
        );
    }
    let policy = if facts.whitelist.is_empty() {
        "any registry".to_owned()
    } else {
        format!("whitelist: {}", facts.whitelist.join(", "))
    };
    let insecure = if facts.insecure_registries.is_empty() {
        "none".to_owned()
    } else {
        facts.insecure_registries.join(", ")
    };
    let runtime_ok = Path::new(&facts.runtime.1).is_file();
    let api_ok = std::net::TcpStream::connect_timeout(
        &facts
            .listen
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 2376))),
        Duration::from_secs(1),
    )
    .is_ok();
    let check = |ok: bool| {
        if ok {
            "<span class=\"ok\">ok</span>"
        } else {
            "<span class=\"bad\">failing</span>"
        }
    };
    let refusals: String = state
        .refusals
        .lock()
        .map(|r| {
            r.iter()
                .rev()
                .map(|l| format!("<li>{}</li>", esc(l)))
                .collect()
        })
        .unwrap_or_default();
    let containment = match (&facts.user_namespace, &facts.containment_warning) {
        (_, Some(w)) => format!("<p class=\"bad warning\">Warning: {}</p>", esc(w)),
        (Some(ns), None) => format!("<p class=\"dim\">User namespace: {}</p>", esc(ns)),
        (None, None) => String::new(),
    };
    let body = format!(
        "{containment}<div class=\"cols\">\
         <section class=\"card\"><h2>{name}</h2><dl>\
         <dt>Version</dt><dd>{version}</dd><dt>Up</dt><dd>{up}</dd>\
         <dt>Docker API</dt><dd>{listen} · {tls}</dd><dt>Signed in as</dt><dd>{who}</dd>\
         <dt>Containers</dt><dd>{running} running, {stopped} stopped</dd><dt>Images</dt><dd>{images}</dd>\
         <dt>State folder</dt><dd>{disk:.1} MiB</dd><dt>Endpoint memory</dt><dd>{rss}</dd></dl></section>\
         <section class=\"card\"><h2>Health</h2><ul class=\"list\"><li>API answering: {api}</li><li>Runtime {runtime}: {rt}</li>{regs}</ul>\
         <h2>Certificates</h2><ul class=\"list\">{certs}</ul>{downloads}</section>\
         <section class=\"card\"><h2>Registries</h2><dl><dt>Policy</dt><dd>{policy}</dd><dt>Insecure</dt><dd>{insecure}</dd></dl>\
         <h2>Networks</h2><ul class=\"list\">{nets}</ul></section>\
         <section class=\"card\"><h2>Refused lately</h2><ul class=\"list\">{refusals}</ul></section></div>",
        name = esc(&facts.name),
        version = esc(vic_core::VERSION),
        up = format_args!("{}h {}m {}s", uptime / 3600, uptime / 60 % 60, uptime % 60),
        listen = esc(&facts.listen),
        tls = esc(facts.tls_mode),
        who = esc(who),
        stopped = containers.len() - running,
        disk = disk as f64 / (1024.0 * 1024.0),
        rss = esc(&rss),
        api = check(api_ok),
        runtime = esc(&facts.runtime.0),
        rt = check(runtime_ok),
        regs = registries
            .iter()
            .map(|(r, ok)| format!("<li>Registry {}: {}</li>", esc(r), check(*ok)))
            .collect::<String>(),
        policy = esc(&policy),
        insecure = esc(&insecure),
        downloads = downloads,
    );
    html(StatusCode::OK, "Dashboard", &body)
}

/// The support bundle: the endpoint log and every container's log and record, as tar.gz.
/// Keys, certificates' private halves and the password hash are never in it.
pub(super) fn bundle(state: &PortalState) -> Response<Body> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64);
        h.set_cksum();
        let _ = tar.append_data(&mut h, name, data);
    };
    add(
        "endpoint.log",
        &std::fs::read(&state.settings.log).unwrap_or_default(),
    );
    // The endpoint's older lines, rotated by size (a bounded number of files).
    for n in 1..=100 {
        let mut rotated = state.settings.log.as_os_str().to_owned();
        rotated.push(format!(".{n}"));
        let Ok(data) = std::fs::read(&rotated) else {
            break;
        };
        add(&format!("endpoint.log.{n}"), &data);
    }
    for v in state.app.containers.list(true) {
        let short = &v.record.id[..12];
        add(
            &format!("containers/{short}-{}/container.log", v.record.name),
            &state.app.containers.raw_log(&v.record.id),
        );
        add(
            &format!("containers/{short}-{}/container.json", v.record.name),
            &serde_json::to_vec_pretty(&v.record).unwrap_or_default(),
        );
    }
    let bytes = tar
        .into_inner()
        .and_then(|gz| gz.finish())
        .unwrap_or_default();
    let mut r = response(StatusCode::OK, "application/gzip", bytes);
    r.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"vch-logs.tar.gz\""),
    );
    r
}

/// The page frame: one stylesheet inline, nothing fetched from anywhere.
pub(super) fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title} · vic</title><style>{CSS}</style></head><body><header><h1>vic <span>virtual container host</span></h1><nav><a href=\"/\">Dashboard</a><a href=\"/logs\">Logs</a><form method=\"post\" action=\"/logout\"><button>Sign out</button></form></nav></header><main>{body}</main></body></html>",
        title = esc(title)
    )
}

pub(super) const CSS: &str = "\
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;background:#f4f6f8;color:#1d2733}\
header{display:flex;align-items:center;justify-content:space-between;flex-wrap:wrap;padding:.6rem 1.4rem;background:#16324f;color:#fff}\
header h1{font-size:1.2rem;margin:0}header h1 span{font-weight:400;opacity:.75;font-size:.9rem;margin-left:.4rem}\
nav{display:flex;gap:1rem;align-items:center}nav a{color:#fff;text-decoration:none}nav form{margin:0}\
nav button{background:transparent;border:1px solid #fff6;color:#fff;border-radius:4px;padding:.2rem .6rem;cursor:pointer}\
main{padding:1.2rem}.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:1rem}\
.card{background:#fff;border-radius:8px;padding:1rem 1.2rem;box-shadow:0 1px 3px #0002}.wide{grid-column:span 2}\
.narrow{max-width:420px;margin:3rem auto}h2{font-size:1.05rem;margin:.2rem 0 .6rem}\
dl{display:grid;grid-template-columns:auto 1fr;gap:.2rem .8rem;margin:0}dt{color:#5b6b7b}dd{margin:0}\
.list{list-style:none;padding:0;margin:0}.list li{padding:.2rem 0;border-bottom:1px solid #eef1f4}\
.ok{color:#1b7f3b;font-weight:600}.bad{color:#b3261e;font-weight:600}.dim{color:#6b7b8b;font-size:.9em}\
pre{background:#0f1b26;color:#dfe7ef;padding:.8rem;border-radius:6px;overflow:auto;max-height:70vh;font-size:.85rem}\
form label{display:block;margin:.6rem 0}input[type=password]{width:100%;padding:.5rem;border:1px solid #c5ced8;border-radius:4px}\
button[type=submit]{background:#16324f;color:#fff;border:0;border-radius:4px;padding:.5rem 1rem;cursor:pointer}\
code{background:#eef1f4;padding:0 .2rem;border-radius:3px}\
@media (max-width:640px){.wide{grid-column:span 1}}";

#[cfg(test)]
mod tests {
    use super::*;

    /// Just after the endpoint's log was rotated, the page still shows its last lines.
    #[test]
    fn the_log_tail_reads_across_a_rotation() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = dir.path().join("endpoint.log");
        assert_eq!(tail(&log), "");
        std::fs::write(dir.path().join("endpoint.log.1"), "a\nb\n")
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&log, "c\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tail(&log), "a\nb\nc\n");
        // A full current file is read alone, from a line start.
        let long = "x".repeat(100) + "\n";
        std::fs::write(&log, long.repeat(LOG_TAIL as usize / 100))
            .unwrap_or_else(|e| panic!("{e}"));
        let t = tail(&log);
        assert!(!t.contains('a') && t.starts_with('x') && t.len() <= LOG_TAIL as usize);
    }
}
