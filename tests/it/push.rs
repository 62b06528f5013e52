//! `picaboot push` against Debian's real `docker-registry` (distribution 2.8) on loopback with
//! htpasswd auth, an OCI layout made by `umoci`, and `skopeo` as the oracle; plus a small
//! in-test registry for the Bearer token flow and relative `Location`s.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use picaboot::registry::{self, BlobAction, Credentials, PushOptions, RegistryError, Secret};

const USER: &str = "tester";
const PASS: &str = "s3cret-pw";

/// Fails (never skips) when a program is missing, naming its Debian package.
/// A `docker-registry` bound to 127.0.0.1 with our own config; killed on drop.
struct Registry {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl Registry {
    fn start() -> Registry {
        Registry::start_with(None)
    }

    /// With `tls = Some((certificate, key))` the registry speaks HTTPS only.
    fn start_with(tls: Option<(&Path, &Path)>) -> Registry {
        common::require("docker-registry", "docker-registry");
        common::require("htpasswd", "apache2-utils");
        let dir = tempfile::tempdir().unwrap();
        let hp = common::run_output(Command::new("htpasswd").args(["-Bbn", USER, PASS])).stdout;
        std::fs::write(dir.path().join("htpasswd"), hp).unwrap();
        let port = common::free_port();
        let tls_conf = match tls {
            Some((c, k)) => format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                c.display(),
                k.display()
            ),
            None => String::new(),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {data}\n  \
             delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: picaboot-test-only\n{tls_conf}\
             auth:\n  htpasswd:\n    realm: picaboot-test\n    path: {hp}\n",
            data = dir.path().join("data").display(),
            hp = dir.path().join("htpasswd").display(),
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let reg = Registry { dir, port, child };
        let t0 = Instant::now();
        loop {
            if tls.is_some() {
                common::require("curl", "curl");
                let out = Command::new("curl")
                    .args([
                        "-sk",
                        "--noproxy",
                        "*",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code}",
                    ])
                    .arg(format!("https://127.0.0.1:{port}/v2/"))
                    .output()
                    .unwrap();
                if out.stdout == b"401" {
                    break;
                }
            } else if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = write!(
                    s,
                    "GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                );
                let mut b = String::new();
                let _ = s.read_to_string(&mut b);
                if b.starts_with("HTTP/1.1 401") {
                    break;
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "registry did not start: {}",
                reg.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        reg
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The digest skopeo sees for `repo:tag`, or skopeo's error.
    fn skopeo_digest(&self, repo_tag: &str) -> Result<String, String> {
        common::require("skopeo", "skopeo");
        let out = Command::new("skopeo")
            .args([
                "inspect",
                "--tls-verify=false",
                "--creds",
                &format!("{USER}:{PASS}"),
            ])
            .arg(format!("docker://{}/{repo_tag}", self.host()))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        Ok(v["Digest"].as_str().unwrap().to_string())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An OCI layout made by umoci: image `name` with a small file and `big` random bytes.
fn fixture(dir: &Path, name: &str, big: usize, seed: u32) -> PathBuf {
    common::require("umoci", "umoci");
    let layout = dir.join("layout");
    let image = format!("{}:{name}", layout.display());
    let bundle = dir.join("bundle");
    common::run_output(
        Command::new("umoci")
            .args(["init", "--layout"])
            .arg(&layout),
    );
    common::run_output(Command::new("umoci").args(["new", "--image", &image]));
    common::run_output(
        Command::new("umoci")
            .args(["unpack", "--rootless", "--image", &image])
            .arg(&bundle),
    );
    let etc = bundle.join("rootfs/etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("hello"), format!("hello {seed}\n")).unwrap();
    let mut x = seed;
    let data: Vec<u8> = (0..big)
        .map(|_| {
            x = x.wrapping_mul(1664525).wrapping_add(1013904223);
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(etc.join("big"), data).unwrap();
    common::run_output(
        Command::new("umoci")
            .args(["repack", "--image", &image])
            .arg(&bundle),
    );
    layout
}

/// The digest of the manifest named `name` in the layout's index.json.
fn local_digest(layout: &Path, name: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name)
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn creds(pass: &str) -> Option<Credentials> {
    Some(Credentials {
        username: USER.into(),
        password: Secret::new(pass),
        source: "test".into(),
    })
}

fn options(layout: &Path, to: &str) -> PushOptions {
    let mut o = PushOptions::new(layout, "tx", to.parse().unwrap());
    o.plain_http = true;
    o.credentials = creds(PASS);
    o
}

#[test]
fn push_then_skopeo_sees_the_digest_and_a_second_push_uploads_nothing() {
    let reg = Registry::start();
    let t = tempfile::tempdir().unwrap();
    let layout = fixture(t.path(), "tx", 3_000_000, 1);
    let want = local_digest(&layout, "tx");

    // Layer above the threshold: chunked PATCHes; config below it: one PUT.
    let mut o = options(&layout, &format!("{}/team/tx-debian:v1", reg.host()));
    o.chunk_threshold = 1_000_000;
    o.chunk_size = 700_000;
    let events = std::sync::Mutex::new(Vec::new());
    let r = registry::push(&o, &|e| events.lock().unwrap().push(e.to_string())).unwrap();
    assert_eq!(r.manifest_digest, want);
    assert_eq!((r.uploaded(), r.skipped()), (2, 0), "{r:#?}");
    assert!(r.blobs.iter().any(|b| b.action == BlobAction::Uploaded));
    assert!(r
        .blobs
        .iter()
        .any(|b| matches!(b.action, BlobAction::UploadedChunked { chunks } if chunks >= 4)));
    let events = events.into_inner().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.contains("uploaded") && e.contains("bytes")),
        "{events:#?}"
    );
    assert_eq!(reg.skopeo_digest("team/tx-debian:v1").unwrap(), want);

    // Again: every blob is already there.
    let o = options(&layout, &format!("{}/team/tx-debian:v1", reg.host()));
    let r = registry::push(&o, &|_| {}).unwrap();
    assert_eq!(
        (r.uploaded(), r.skipped(), r.bytes_uploaded),
        (0, 2, 0),
        "{r:#?}"
    );
    assert_eq!(reg.skopeo_digest("team/tx-debian:v1").unwrap(), want);

    // Another tag, monolithic only: still nothing to upload, manifest under the new tag.
    let o = options(&layout, &format!("{}/team/tx-debian:stable", reg.host()));
    let r = registry::push(&o, &|_| {}).unwrap();
    assert_eq!(r.uploaded(), 0);
    assert_eq!(reg.skopeo_digest("team/tx-debian:stable").unwrap(), want);
    // The password never reached the registry's log in clear.
    assert!(!reg.log().contains(PASS));
}

#[test]
fn push_interrupted_upload_is_finished_by_a_retry() {
    let reg = Registry::start();
    let t = tempfile::tempdir().unwrap();
    let layout = fixture(t.path(), "tx", 4_000_000, 2);
    let want = local_digest(&layout, "tx");
    let to = format!("{}/team/interrupted:v1", reg.host());

    for (threshold, cut) in [(u64::MAX, 1_500_000), (1_000_000, 2_500_000)] {
        let mut o = options(&layout, &to);
        o.chunk_threshold = threshold;
        o.chunk_size = 1_000_000;
        o.fail_after_bytes = Some(cut);
        let err = registry::push(&o, &|_| {}).unwrap_err();
        assert!(matches!(err, RegistryError::Transfer { .. }), "{err:?}");
        // Nothing half-visible: no manifest, and the big blob is not there.
        let e = reg.skopeo_digest("team/interrupted:v1").unwrap_err();
        assert!(e.contains("manifest unknown"), "{e}");
    }
    let o = options(&layout, &to);
    let r = registry::push(&o, &|_| {}).unwrap();
    assert_eq!(r.manifest_digest, want);
    assert!(
        r.blobs
            .iter()
            .any(|b| b.size > 1_000_000 && b.action != BlobAction::Skipped),
        "{r:#?}"
    );
    assert_eq!(reg.skopeo_digest("team/interrupted:v1").unwrap(), want);
}

/// Runs the binary with a clean credential environment plus `env`.
fn picaboot(args: &[&str], env: &[(&str, &str)], home: &Path) -> Output {
    // `picaboot image push …`: the tests name the subcommand `push`.
    let full: Vec<&str> = if args.first() == Some(&"push") {
        std::iter::once("image")
            .chain(args.iter().copied())
            .collect()
    } else {
        args.to_vec()
    };
    let args = full.as_slice();
    let mut c = Command::new(env!("CARGO_BIN_EXE_picaboot"));
    c.args(args)
        .env_remove("PICABOOT_REGISTRY_USERNAME")
        .env_remove("PICABOOT_REGISTRY_PASSWORD")
        .env_remove("DOCKER_CONFIG")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .env("HOME", home)
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn push_cli_errors_are_clear_and_auth_file_works() {
    let reg = Registry::start();
    let t = tempfile::tempdir().unwrap();
    let layout = fixture(t.path(), "tx", 10_000, 3);
    let l = layout.to_str().unwrap();
    let to = format!("{}/team/cli:v1", reg.host());
    let home = t.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let good = [
        ("PICABOOT_REGISTRY_USERNAME", USER),
        ("PICABOOT_REGISTRY_PASSWORD", PASS),
    ];
    let text = |o: &Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };

    // Wrong password: exit 2, clear message, the password not echoed.
    let o = picaboot(
        &["push", "tx", "--layout", l, "--to", &to, "--plain-http"],
        &[
            ("PICABOOT_REGISTRY_USERNAME", USER),
            ("PICABOOT_REGISTRY_PASSWORD", "not-the-password"),
        ],
        &home,
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("authentication failed for {}", reg.host())),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains("not-the-password"));

    // No credentials at all.
    let o = picaboot(
        &["push", "tx", "--layout", l, "--to", &to, "--plain-http"],
        &[],
        &home,
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("requires authentication"), "{}", text(&o));

    // Nothing listening there.
    let closed = format!("127.0.0.1:{}/team/cli:v1", common::free_port());
    let o = picaboot(
        &["push", "tx", "--layout", l, "--to", &closed, "--plain-http"],
        &good,
        &home,
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("cannot reach registry 127.0.0.1:")
            && text(&o).contains("connection refused"),
        "{}",
        text(&o)
    );

    // HTTPS (the default) against a plain-HTTP registry.
    let o = picaboot(&["push", "tx", "--layout", l, "--to", &to], &good, &home);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--plain-http"), "{}", text(&o));

    // User errors: exit 1.
    let o = picaboot(
        &["push", "nope", "--layout", l, "--to", &to, "--plain-http"],
        &good,
        &home,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("no image named \"nope\"") && text(&o).contains("tx"),
        "{}",
        text(&o)
    );
    let o = picaboot(
        &[
            "push",
            "tx",
            "--layout",
            l,
            "--to",
            "127.0.0.1:1/Bad",
            "--plain-http",
        ],
        &good,
        &home,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // Credentials from ~/.docker/config.json.
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"));
    std::fs::create_dir_all(home.join(".docker")).unwrap();
    std::fs::write(
        home.join(".docker/config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host()),
    )
    .unwrap();
    let o = picaboot(
        &[
            "push",
            "tx",
            "--layout",
            l,
            "--to",
            &to,
            "--plain-http",
            "--json",
        ],
        &[],
        &home,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["manifest_digest"], local_digest(&layout, "tx"));
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("push: blob"),
        "--json: no progress on stderr: {}",
        text(&o)
    );
    assert_eq!(
        reg.skopeo_digest("team/cli:v1").unwrap(),
        local_digest(&layout, "tx")
    );
    // Without --json a line per blob (not a terminal: plain lines); with -q none.
    let args = ["push", "tx", "--layout", l, "--to", &to, "--plain-http"];
    let o = picaboot(&args, &[], &home);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("push: blob sha256:"),
        "{}",
        text(&o)
    );
    let mut quiet = args.to_vec();
    quiet.push("-q");
    let o = picaboot(&quiet, &[], &home);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(o.stderr.is_empty(), "-q: {}", text(&o));
}

#[test]
fn push_killed_mid_upload_then_a_retry_completes() {
    use std::io::BufRead;
    let reg = Registry::start();
    let t = tempfile::tempdir().unwrap();
    let layout = fixture(t.path(), "tx", 16_000_000, 4);
    let want = local_digest(&layout, "tx");
    let to = format!("{}/team/killed:v1", reg.host());
    let args = [
        "image",
        "push",
        "tx",
        "--layout",
        layout.to_str().unwrap(),
        "--to",
        &to,
        "--plain-http",
        // Many small chunks: the big layer takes hundreds of requests, so the kill lands inside it.
        "--chunk-threshold",
        "1",
        "--chunk-size",
        "65536",
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_picaboot"))
        .args(args)
        .env("PICABOOT_REGISTRY_USERNAME", USER)
        .env("PICABOOT_REGISTRY_PASSWORD", PASS)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    // The config (tiny) goes first; once it is reported, the layer upload is under way.
    let mut seen = Vec::new();
    for l in lines.by_ref() {
        let l = l.unwrap();
        seen.push(l.clone());
        if l.contains("uploaded") {
            break;
        }
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the push finished before the kill: {seen:#?}"
    );
    assert!(!seen.iter().any(|l| l.contains("manifest")), "{seen:#?}");
    let e = reg.skopeo_digest("team/killed:v1").unwrap_err();
    assert!(e.contains("manifest unknown"), "{e}");

    let out = Command::new(env!("CARGO_BIN_EXE_picaboot"))
        .args([
            "image",
            "push",
            "tx",
            "--layout",
            layout.to_str().unwrap(),
            "--to",
            &to,
            "--plain-http",
            "--json",
        ])
        .env("PICABOOT_REGISTRY_USERNAME", USER)
        .env("PICABOOT_REGISTRY_PASSWORD", PASS)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let blobs = r["blobs"].as_array().unwrap();
    assert_eq!(blobs[0]["action"], "skipped", "{r:#}");
    assert_eq!(blobs[1]["action"], "uploaded", "{r:#}");
    assert_eq!(reg.skopeo_digest("team/killed:v1").unwrap(), want);
}

#[test]
fn push_over_tls_trusts_the_system_roots_only() {
    common::require("openssl", "openssl");
    let t = tempfile::tempdir().unwrap();
    let p = |n: &str| t.path().join(n);
    // The test registry's throwaway CA and certificate (openssl, through the library).
    let tls = picaboot::services::test_registry::throwaway_tls(&p("tls"), "127.0.0.1").unwrap();
    let reg = Registry::start_with(Some((&tls.cert, &tls.key)));
    let layout = fixture(t.path(), "tx", 100_000, 5);
    let l = layout.to_str().unwrap();
    let to = format!("{}/team/tls:v1", reg.host());
    let home = p("home");
    std::fs::create_dir_all(&home).unwrap();
    let creds = [
        ("PICABOOT_REGISTRY_USERNAME", USER),
        ("PICABOOT_REGISTRY_PASSWORD", PASS),
    ];
    let text = |o: &Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };

    // The test CA is not among the system roots: refused, and said so.
    let o = picaboot(&["push", "tx", "--layout", l, "--to", &to], &creds, &home);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("TLS certificate not trusted by the system roots"),
        "{}",
        text(&o)
    );

    // With the CA as the trust store (SSL_CERT_FILE, honoured by the native roots loader): HTTPS push.
    let ca = tls.ca_pem.clone();
    let mut env = creds.to_vec();
    env.push(("SSL_CERT_FILE", ca.to_str().unwrap()));
    let o = picaboot(&["push", "tx", "--layout", l, "--to", &to], &env, &home);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        reg.skopeo_digest("team/tls:v1").unwrap(),
        local_digest(&layout, "tx")
    );
}

/// One request a recording proxy saw: method, path, and its `Authorization` header if any.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String, Option<String>)>>>;

/// A loopback HTTP proxy in front of the real registry at `upstream`, on its own thread:
/// records every request's method, path and `Authorization`, forwards it (adding
/// `inject_auth` when given, as a storage host would authorize a pre-signed upload URL), and
/// rewrites every `Location` the registry answers so that it points at `location_to`, another
/// origin. Returns its port.
fn recording_proxy(
    upstream: u16,
    location_to: std::sync::Arc<std::sync::atomic::AtomicU16>,
    inject_auth: Option<String>,
    seen: Seen,
) -> u16 {
    use http_body_util::{BodyExt, Full};

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    common::on_own_runtime(async move {
        let l = tokio::net::TcpListener::from_std(listener).unwrap();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        loop {
            let (s, _) = l.accept().await.unwrap();
            let (client, seen, inject, to) = (
                client.clone(),
                seen.clone(),
                inject_auth.clone(),
                location_to.clone(),
            );
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (client, seen, inject, to) =
                            (client.clone(), seen.clone(), inject.clone(), to.clone());
                        async move {
                            let method = req.method().clone();
                            let pq = req
                                .uri()
                                .path_and_query()
                                .map(|p| p.to_string())
                                .unwrap_or_default();
                            let auth = req
                                .headers()
                                .get("authorization")
                                .map(|v| v.to_str().unwrap().to_string());
                            seen.lock().unwrap().push((
                                method.to_string(),
                                req.uri().path().to_string(),
                                auth,
                            ));
                            let mut fwd =
                                client.request(method, format!("http://127.0.0.1:{upstream}{pq}"));
                            for (k, v) in req.headers() {
                                if !matches!(
                                    k.as_str(),
                                    "host" | "content-length" | "transfer-encoding" | "connection"
                                ) {
                                    fwd = fwd.header(k, v);
                                }
                            }
                            if let Some(a) = &inject {
                                fwd = fwd.header("authorization", a);
                            }
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let up = fwd.body(body).send().await.unwrap();
                            let mut resp = hyper::Response::builder().status(up.status());
                            let target = format!(
                                "http://127.0.0.1:{}",
                                to.load(std::sync::atomic::Ordering::SeqCst)
                            );
                            for (k, v) in up.headers() {
                                if matches!(
                                    k.as_str(),
                                    "content-length" | "transfer-encoding" | "connection"
                                ) {
                                    continue;
                                }
                                if k == "location" {
                                    let l = v.to_str().unwrap();
                                    let l = l
                                        .strip_prefix(&format!("http://127.0.0.1:{upstream}"))
                                        .unwrap_or(l);
                                    assert!(l.starts_with('/'), "unexpected Location {l}");
                                    resp = resp.header(k, format!("{target}{l}"));
                                } else {
                                    resp = resp.header(k, v);
                                }
                            }
                            let bytes = up.bytes().await.unwrap();
                            Ok::<_, std::convert::Infallible>(resp.body(Full::new(bytes)).unwrap())
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    port
}

#[test]
fn credentials_never_follow_a_location_to_another_origin() {
    use std::sync::atomic::AtomicU16;
    use std::sync::Arc;

    let reg = Registry::start();
    let t = tempfile::tempdir().unwrap();
    let layout = fixture(t.path(), "tx", 2_500_000, 7);
    let want = local_digest(&layout, "tx");

    // The registry's own origin (F) hands every upload to a storage host (S) on another
    // origin (another port), as a registry backed by object storage does.
    let storage_port = Arc::new(AtomicU16::new(0));
    let (front_seen, storage_seen): (Seen, Seen) = Default::default();
    let front = recording_proxy(reg.port, storage_port.clone(), None, front_seen.clone());
    let storage_auth = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{USER}:{PASS}")
        )
    );
    let storage = recording_proxy(
        reg.port,
        storage_port.clone(),
        Some(storage_auth),
        storage_seen.clone(),
    );
    storage_port.store(storage, std::sync::atomic::Ordering::SeqCst);

    let mut o = options(&layout, &format!("127.0.0.1:{front}/team/origin:v1"));
    o.chunk_threshold = 1_000_000;
    o.chunk_size = 1_000_000;
    let r = registry::push(&o, &|_| {}).unwrap();
    assert_eq!(r.manifest_digest, want);
    assert_eq!(reg.skopeo_digest("team/origin:v1").unwrap(), want);

    let storage_seen = storage_seen.lock().unwrap();
    let front_seen = front_seen.lock().unwrap();
    // The uploads (PATCH chunks and the closing PUTs) went to the other origin, bare.
    assert!(
        storage_seen.iter().any(|(m, _, _)| m == "PATCH")
            && storage_seen.iter().any(|(m, _, _)| m == "PUT"),
        "{storage_seen:#?}"
    );
    let leaked: Vec<_> = storage_seen
        .iter()
        .filter(|(_, _, a)| a.is_some())
        .collect();
    assert!(
        leaked.is_empty(),
        "Authorization sent to another origin: {leaked:#?}"
    );
    // The registry's own origin did get the credentials (the POST starting each upload, the
    // manifest PUT).
    assert!(
        front_seen
            .iter()
            .any(|(m, p, a)| m == "POST" && p.ends_with("/blobs/uploads/") && a.is_some()),
        "{front_seen:#?}"
    );
    assert!(
        front_seen
            .iter()
            .any(|(m, p, a)| m == "PUT" && p.contains("/manifests/") && a.is_some()),
        "{front_seen:#?}"
    );
}
