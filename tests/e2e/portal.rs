//! The admin portal on 2378 over HTTPS: a password where the VCH does not verify clients
//! (login, wrong password, form token, session expiry, rate limit), a client certificate where
//! it does, the pages and the support bundle.

use vic_testkit::TestHost;

use crate::{BUSYBOX, create, detached, eventually, host_with_vch, vch_with_registry};

const PORTAL: &str = "https://127.0.0.2:2378";

/// The admin password a vic-machine command printed (once).
pub(crate) fn printed_password(run: &vic_testkit::Run, what: &str) -> String {
    run.stdout
        .lines()
        .find_map(|l| l.split("keeps just a hash of it): ").nth(1))
        .unwrap_or_else(|| panic!("{what}: {run:?}"))
        .trim()
        .to_owned()
}

/// The value of `name="csrf" value="..."` in a login page.
pub(crate) fn csrf(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn portal_signs_in_with_the_password_and_serves_pages_and_a_bundle() {
    let host = TestHost::new();
    // Sessions of 2 seconds, to see one expire.
    let sessions = [("VIC_PORTAL_SESSION_SECS", "2")];
    let out = vch_with_registry(&host, "adm", &["--no-tls"], &sessions);
    out.says(&format!("Admin portal: {PORTAL}/"));
    let password = printed_password(&out, "the password is printed");
    let curl = |args: &str| host.sh(&format!("curl -sk -i {args}"));
    let env = out.docker_env();
    let id = detached(&host, &env, &[BUSYBOX, "echo", "hello-portal-log"]);

    // Not signed in: the login page; every answer carries the frame and content policy.
    curl(&format!("{PORTAL}/"))
        .ok()
        .says("303 See Other")
        .says("location: /login");
    let page = curl(&format!("{PORTAL}/login")).ok();
    page.says("200 OK")
        .says("frame-ancestors 'none'")
        .says("type=\"password\"");
    // No form token, or one not issued: refused.
    curl(&format!("-d password={password} {PORTAL}/login"))
        .ok()
        .says("403 Forbidden");
    curl(&format!(
        "-d csrf=0000 -d password={password} {PORTAL}/login"
    ))
    .ok()
    .says("403 Forbidden");
    // A wrong password: refused and logged with the source address.
    let token = csrf(&curl(&format!("{PORTAL}/login")).ok().stdout);
    curl(&format!("-d csrf={token} -d password=wrong {PORTAL}/login"))
        .ok()
        .says("401 Unauthorized")
        .says("Wrong password");
    // The right one: a session cookie, Secure, HttpOnly, SameSite=Strict.
    let token = csrf(&curl(&format!("{PORTAL}/login")).ok().stdout);
    let signed = curl(&format!(
        "-c jar -d csrf={token} --data-urlencode password={password} {PORTAL}/login"
    ))
    .ok();
    signed
        .says("303 See Other")
        .says("Secure; HttpOnly; SameSite=Strict");
    // A token is good once.
    curl(&format!(
        "-d csrf={token} -d password={password} {PORTAL}/login"
    ))
    .ok()
    .says("403 Forbidden");
    let dash = curl(&format!("-b jar {PORTAL}/")).ok();
    dash.says("200 OK")
        .says("adm")
        .says("API answering: <span class=\"ok\">ok</span>")
        .says("admin (password)")
        .says("Registry 127.0.0.1:5000: <span class=\"ok\">ok</span>")
        .says("refused: wrong password")
        .says("bridge");
    curl(&format!("-b jar {PORTAL}/logs"))
        .ok()
        .says("200 OK")
        .says("endpoint ready")
        .says("refresh: 5");
    // A container's log.
    let log_page = || curl(&format!("-b jar {PORTAL}/logs/{id}")).stdout;
    let seen = eventually(30, || log_page().contains("stdout hello-portal-log"));
    assert!(seen, "the container's log is not shown");
    // The bundle: the logs, never a key, the password or its hash.
    host.sh(&format!(
        "curl -sk -b jar -o bundle.tgz {PORTAL}/bundle.tar.gz"
    ))
    .ok();
    host.sh("tar -tzf bundle.tgz").ok().says("endpoint.log");
    let all = host.sh("tar -xzOf bundle.tgz").ok();
    all.says("endpoint ready")
        .says("hello-portal-log")
        .never_says("PRIVATE KEY")
        .never_says("$argon2")
        .never_says(&password);
    // The endpoint log names the failure and its source, never the password.
    let log = std::fs::read_to_string(host.root().join("adm/endpoint.log")).unwrap();
    assert!(
        log.contains("wrong password") && log.contains("login from 127.0.0."),
        "{log}"
    );
    assert!(!log.contains(&password));
    // A new password (configure): sessions signed in with the old one end; the old one is
    // refused, the new one signs in.
    let reset = host
        .vic_machine(["configure", "--name", "adm", "--reset-admin-password"])
        .ok();
    let new_password = printed_password(&reset, "the new password is printed");
    curl(&format!("-b jar {PORTAL}/"))
        .ok()
        .says("location: /login");
    let t = csrf(&curl(&format!("{PORTAL}/login")).ok().stdout);
    curl(&format!(
        "-d csrf={t} --data-urlencode password={password} {PORTAL}/login"
    ))
    .ok()
    .says("401 Unauthorized");
    let t = csrf(&curl(&format!("{PORTAL}/login")).ok().stdout);
    curl(&format!(
        "-c jar2 -d csrf={t} --data-urlencode password={new_password} {PORTAL}/login"
    ))
    .ok()
    .says("303 See Other");
    curl(&format!("-b jar2 {PORTAL}/")).ok().says("200 OK");
    // Sessions expire.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    curl(&format!("-b jar2 {PORTAL}/"))
        .ok()
        .says("location: /login");
    // Failed logins are rate-limited per address.
    for _ in 0..5 {
        let t = csrf(&curl(&format!("{PORTAL}/login")).ok().stdout);
        curl(&format!("-d csrf={t} -d password=nope {PORTAL}/login")).ok();
    }
    let t = csrf(&curl(&format!("{PORTAL}/login")).ok().stdout);
    curl(&format!(
        "-d csrf={t} --data-urlencode password={new_password} {PORTAL}/login"
    ))
    .ok()
    .says("429 Too Many Requests");
}

#[test]
fn sign_in_attempts_sent_at_once_all_count() {
    let (host, out) = host_with_vch("par", &["--no-tls"]);
    let password = printed_password(&out, "the password is printed");
    // Ten forms, then ten wrong passwords at once: the limit (5 a minute) holds for all of
    // them, not only for those that finished before the next began.
    let tokens: Vec<String> = (0..10)
        .map(|_| csrf(&host.sh(&format!("curl -sk {PORTAL}/login")).ok().stdout))
        .collect();
    let script: String = tokens
        .iter()
        .map(|t| {
            format!("curl -sk -o /dev/null -w '%{{http_code}}\\n' -d csrf={t} -d password=nope {PORTAL}/login & ")
        })
        .collect::<String>()
        + "wait";
    let codes = host.sh(&script).ok().stdout;
    let wrong = codes.lines().filter(|c| c.trim() == "401").count();
    let limited = codes.lines().filter(|c| c.trim() == "429").count();
    assert!(wrong <= 5 && wrong + limited == 10, "{codes}");
    // The right password from that address waits too.
    let t = csrf(&host.sh(&format!("curl -sk {PORTAL}/login")).ok().stdout);
    host.sh(&format!(
        "curl -sk -i -d csrf={t} --data-urlencode password={password} {PORTAL}/login"
    ))
    .ok()
    .says("429 Too Many Requests");
}

#[test]
fn portal_signs_in_with_the_client_certificate() {
    let (host, out) = host_with_vch("mtls", &[]);
    out.says("Sign in to it with the client certificate");
    out.never_says("Admin portal password");
    let certs = host.dir().join("mtls");
    let with_cert = format!(
        "--cacert {d}/ca.pem --cert {d}/cert.pem --key {d}/key.pem",
        d = certs.display()
    );
    // With the VCH's client certificate: straight in, named by its subject.
    host.sh(&format!("curl -s -i {with_cert} {PORTAL}/"))
        .ok()
        .says("200 OK")
        .says("certificate CN=")
        .says("client CA:")
        .says("expires in")
        .says("href=\"/certificates/ca.pem\"");
    // The CA and server certificate to download: the files the certificate folder holds, and
    // never a key; without signing in, the login page instead.
    for file in ["ca.pem", "server-cert.pem"] {
        let got = host
            .sh(&format!(
                "curl -s -i {with_cert} {PORTAL}/certificates/{file}"
            ))
            .ok()
            .says("200 OK")
            .says("application/x-pem-file")
            .says(&format!("filename=\"{file}\""))
            .never_says("PRIVATE KEY")
            .stdout
            .replace('\r', "");
        let want = std::fs::read_to_string(certs.join(file)).unwrap();
        assert!(got.ends_with(&want.replace('\r', "")), "{file}: {got}");
    }
    host.sh(&format!(
        "curl -s -i --cacert {}/ca.pem {PORTAL}/certificates/ca.pem",
        certs.display()
    ))
    .ok()
    .says("303 See Other")
    .never_says("BEGIN CERTIFICATE");
    // Without one: the login page, which says how to get in (there is no password).
    host.sh(&format!(
        "curl -s -i --cacert {}/ca.pem {PORTAL}/login",
        certs.display()
    ))
    .ok()
    .says("signs in with its client certificate only")
    .never_says("type=\"password\"");
    // A certificate of another CA (another VCH's): the handshake is refused, and the refusal
    // shown on the dashboard.
    crate::create_on(&host, "other", "127.0.0.3", &[]);
    let other = host.dir().join("other");
    host.sh(&format!(
        "curl -s -i --cacert {d}/ca.pem --cert {o}/cert.pem --key {o}/key.pem {PORTAL}/",
        d = certs.display(),
        o = other.display()
    ))
    .fails();
    host.sh(&format!("curl -s -i {with_cert} {PORTAL}/"))
        .ok()
        .says("TLS handshake from 127.0.0.");
}

#[test]
fn headless_chromium_shows_the_dashboard_to_the_client_certificate() {
    let (host, _) = host_with_vch("browse", &[]);
    let certs = host.dir().join("browse");
    // A fresh profile whose certificate store holds the VCH's cert.pfx, as an admin imports it.
    let home = host.path("chromium-home");
    let nss = home.join(".pki/nssdb");
    std::fs::create_dir_all(&nss).unwrap();
    host.sh(&format!(
        "certutil -N --empty-password -d sql:{nss} && pk12util -i {c}/cert.pfx -d sql:{nss} -W \"$(cat {c}/cert.pfx.password)\"",
        nss = nss.display(),
        c = certs.display()
    ))
    .ok()
    .says("PKCS12 IMPORT SUCCESSFUL");
    // Headless Chromium cannot ask which certificate to send: a policy picks it, in this
    // test's own mount namespace only (/etc/chromium of the machine is untouched).
    let etc = host.path("etc-chromium");
    std::fs::create_dir_all(etc.join("policies/managed")).unwrap();
    std::fs::write(
        etc.join("policies/managed/vic-test.json"),
        r#"{"AutoSelectCertificateForUrls": ["{\"pattern\":\"https://127.0.0.2:2378\",\"filter\":{}}"]}"#,
    )
    .unwrap();
    host.sh(&format!("mount --bind {} /etc/chromium", etc.display()))
        .ok();
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-artifacts");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join("portal-dashboard.png");
    let _ = std::fs::remove_file(&shot);
    // Chromium, started while the machine is busy with other tests, now and then exits at
    // once with an empty page (its stderr says why, kept for the failure message): up to
    // three tries.
    let log = host.path("chromium.log");
    let dump = || {
        host.sh(&format!(
            "HOME={home} timeout 60 chromium --headless --no-sandbox --disable-gpu --user-data-dir={home}/profile --ignore-certificate-errors --window-size=1280,900 --dump-dom {PORTAL}/ 2>>{log}",
            home = home.display(),
            log = log.display()
        ))
        .ok()
    };
    let mut dom = dump();
    for _ in 0..2 {
        if dom.stdout.contains("Signed in as") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
        dom = dump();
    }
    assert!(
        dom.stdout.contains("Signed in as"),
        "no dashboard in three tries; chromium said: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    dom.says("Signed in as")
        .says("certificate CN=browse client")
        .says("API answering");
    host.sh(&format!(
        "HOME={home} timeout 60 chromium --headless --no-sandbox --disable-gpu --user-data-dir={home}/profile --ignore-certificate-errors --window-size=1280,900 --screenshot={shot} {PORTAL}/",
        home = home.display(),
        shot = shot.display()
    ))
    .ok();
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
}

#[test]
fn portal_warns_of_a_certificate_about_to_expire() {
    let host = TestHost::new();
    // A server certificate of the admin's own, valid ten more days.
    host.sh(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 10 \
         -subj /CN=127.0.0.2 -addext subjectAltName=IP:127.0.0.2 \
         -addext keyUsage=digitalSignature,keyEncipherment,keyAgreement \
         -addext extendedKeyUsage=serverAuth -keyout short-key.pem -out short.pem 2>&1",
    )
    .ok();
    let out = create(
        &host,
        "short",
        &[
            "--client-network-ip",
            "127.0.0.2",
            "--tls-server-cert",
            "short.pem",
            "--tls-server-key",
            "short-key.pem",
            "--no-tlsverify",
        ],
    );
    let password = printed_password(&out, "a VCH without client verification gets a password");
    let curl = |args: &str| host.sh(&format!("curl -s -i --cacert short.pem {args}"));
    let t = csrf(&curl(&format!("{PORTAL}/login")).ok().stdout);
    curl(&format!(
        "-c jar -d csrf={t} --data-urlencode password={password} {PORTAL}/login"
    ))
    .ok()
    .says("303 See Other");
    curl(&format!("-b jar {PORTAL}/"))
        .ok()
        .says("server: CN=127.0.0.2")
        .says("<span class=\"bad\">expires in 10 days — renew soon");
}
