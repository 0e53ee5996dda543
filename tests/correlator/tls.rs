//! HTTPS with rustls, mTLS, and the plain-HTTP-on-loopback-only rule.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{
    ForwardProc, ch_query, clickhouse, create_token, eve_line, free_port, fresh_db, now_us,
    tocsin_bin,
};

/// Makes a CA, a server certificate for 127.0.0.1/localhost and a client certificate with
/// the openssl CLI (EC P-256).
fn make_pki(dir: &Path) {
    let script = r#"
set -e
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=tocsin-test-ca 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' > server.ext
printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n' > client.ext
for who in server client; do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $who.key -out $who.csr -subj /CN=$who 2>/dev/null
  openssl x509 -req -in $who.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out $who.crt -days 2 -extfile $who.ext 2>/dev/null
done
"#;
    let st = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(st.success(), "openssl failed");
}

#[test]
fn https_with_client_certificates() {
    let ch = clickhouse();
    let db = fresh_db("tls");
    let dir = tempfile::tempdir().unwrap();
    make_pki(dir.path());
    let p = |f: &str| dir.path().join(f).display().to_string();
    let token = create_token(&ch.url(), &db, "sensor", "MOH", "edge-tls");
    let port = free_port();
    let mut child = Command::new(tocsin_bin())
        .args([
            "correlator",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--clickhouse-url",
            &ch.url(),
            "--database",
            &db,
        ])
        .args([
            "--tls-cert",
            &p("server.crt"),
            "--tls-key",
            &p("server.key"),
            "--tls-client-ca",
            &p("ca.crt"),
        ])
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(p("ca.crt")).unwrap()).unwrap();
    let https = reqwest::blocking::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{port}");
    assert!(
        crate::common::wait_until(Duration::from_secs(30), || https
            .get(format!("{url}/healthz"))
            .send()
            .is_ok_and(|r| r.status() == 200)),
        "HTTPS /healthz"
    );
    // Plain HTTP to the TLS port fails.
    assert!(
        reqwest::blocking::get(format!("http://127.0.0.1:{port}/healthz"))
            .map_or(true, |r| r.status() != 200)
    );
    let file = dir.path().join("a.ndjson");
    let lines: Vec<String> = (1..=50)
        .map(|i| {
            eve_line(
                "edge-tls",
                i,
                now_us() - 1_000_000,
                9,
                "Misc",
                "10.0.0.1",
                "10.0.0.2",
                443,
            )
        })
        .collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    // With the CA and a client certificate: delivered.
    let mut f = ForwardProc::start(&[
        file.to_str().unwrap(),
        "--forward",
        &url,
        "--token",
        &token,
        "--spool",
        &p("spool1"),
        "--ca-cert",
        &p("ca.crt"),
        "--client-cert",
        &p("client.crt"),
        "--client-key",
        &p("client.key"),
    ]);
    assert!(f.wait(), "{:?}", f.lines.lock().unwrap());
    assert_eq!(
        ch_query(&ch.url(), &format!("SELECT count() FROM {db}.alerts")),
        "50"
    );
    // Without our CA the server certificate is not trusted: nothing is delivered, all stays spooled.
    let mut f = ForwardProc::start(&[
        file.to_str().unwrap(),
        "--forward",
        &url,
        "--token",
        &token,
        "--spool",
        &p("spool2"),
        "--grace",
        "2s",
    ]);
    assert!(!f.wait(), "must not deliver to an untrusted server");
    assert!(
        f.wait_line("stats", Duration::from_secs(1))
            .contains("accepted=0")
    );
    let _ = child.kill();
    let _ = child.wait();
    // Requiring client certificates: a client without one is refused at the handshake.
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[tls]\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\nrequire_client_cert = true\n",
            p("server.crt"),
            p("server.key"),
            p("ca.crt")
        ),
    )
    .unwrap();
    let port = free_port();
    let mut child = Command::new(tocsin_bin())
        .args([
            "correlator",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--clickhouse-url",
            &ch.url(),
            "--database",
            &db,
            "-c",
        ])
        .arg(&cfg)
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let url = format!("https://127.0.0.1:{port}");
    std::thread::sleep(Duration::from_millis(500));
    let ok_client = {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(p("ca.crt")).unwrap()).unwrap();
        let mut pem = std::fs::read(p("client.crt")).unwrap();
        pem.extend(std::fs::read(p("client.key")).unwrap());
        reqwest::blocking::Client::builder()
            .add_root_certificate(ca)
            .identity(reqwest::Identity::from_pem(&pem).unwrap())
            .build()
            .unwrap()
    };
    assert!(crate::common::wait_until(Duration::from_secs(30), || {
        ok_client
            .get(format!("{url}/healthz"))
            .send()
            .is_ok_and(|r| r.status() == 200)
    }));
    assert!(
        https.get(format!("{url}/healthz")).send().is_err(),
        "no client certificate: handshake refused"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn plain_http_only_on_loopback_unless_allowed() {
    let out = Command::new(tocsin_bin())
        .args([
            "correlator",
            "--listen",
            "0.0.0.0:0",
            "--clickhouse-url",
            "http://127.0.0.1:1",
            "--database",
            "x",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("allow_plain_http"), "{err}");
}
