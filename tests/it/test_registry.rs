//! The test registry of `picaboot test services` (`src/services/test_registry.rs`): Debian's
//! `docker-registry` serving images/tx-registry's config.yml on loopback with a throwaway CA
//! and a random htpasswd password. An image built by picaboot's builder is pushed with the
//! library's push (`--ca-file` trust for that origin only) and read back by `skopeo`, the
//! real consumer; a wrong password, plain HTTP and an untrusted origin are refused; the
//! password shows in no log. And the tx-registry image itself passes its check under podman.

use crate::common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use picaboot::image::build::BuildMirror;
use picaboot::registry::client::Session;
use picaboot::services::test_registry::{self, TestRegistry};

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `skopeo inspect` of `name` with the CA in a cert dir (as skopeo and podman read it:
/// `*.crt` files) and `creds`; stdout+stderr and whether it succeeded.
fn skopeo_inspect(reg: &TestRegistry, cert_dir: &Path, creds: &str, name: &str) -> Output {
    common::require("skopeo", "skopeo");
    Command::new("skopeo")
        .arg("inspect")
        .arg("--cert-dir")
        .arg(cert_dir)
        .args(["--creds", creds])
        .arg(format!("docker://{}", reg.reference(name)))
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn cert_dir(reg: &TestRegistry, at: &Path) -> std::path::PathBuf {
    let d = at.join("certs.d");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::copy(reg.ca_pem(), d.join("ca.crt")).unwrap();
    d
}

#[test]
fn test_registry_serves_a_picaboot_image_to_skopeo_and_refuses_the_rest() {
    common::require("openssl", "openssl");
    common::require("htpasswd", "apache2-utils");
    common::require("docker-registry", "docker-registry");
    common::require("curl", "curl");
    let t = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let reg = TestRegistry::start(
        &common::root().join("images"),
        &t.path().join("reg"),
        "localhost",
    )
    .unwrap();
    eprintln!("registry started in {:.2} s", t0.elapsed().as_secs_f64());
    let pw = reg.password().expose().to_string();
    // Key files are private.
    use std::os::unix::fs::PermissionsExt;
    for k in [&reg.tls().key, &t.path().join("reg/tls/ca.key")] {
        let mode = std::fs::metadata(k).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", k.display());
    }

    // tx-debian: the smallest image, built by the library's builder with the usual cache.
    let out = t.path().join("images");
    let t1 = Instant::now();
    let built = test_registry::build_image(
        &common::root().join("images"),
        &common::root().join("profiles"),
        "tx-debian",
        &out,
        BuildMirror::Host,
        None,
    )
    .unwrap();
    eprintln!("tx-debian built in {:.2} s", t1.elapsed().as_secs_f64());
    let want = built.last().unwrap().manifest.digest.clone();
    let t2 = Instant::now();
    let digest = reg.push(&out, "tx-debian").unwrap();
    eprintln!("tx-debian pushed in {:.2} s", t2.elapsed().as_secs_f64());
    assert_eq!(digest, want);

    // skopeo, trusting the CA through --cert-dir, sees the same digest.
    let certs = cert_dir(&reg, t.path());
    let good = format!("{}:{pw}", reg.user());
    let o = skopeo_inspect(&reg, &certs, &good, "tx-debian");
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["Digest"], want.as_str());

    // A wrong password: 401 from the registry, as skopeo reports it.
    let o = skopeo_inspect(
        &reg,
        &certs,
        &format!("{}:wrong-{pw}", reg.user()),
        "tx-debian",
    );
    assert!(!o.status.success(), "{}", text(&o));
    let e = text(&o);
    assert!(
        e.contains("401") || e.contains("unauthorized"),
        "wrong password not refused with 401: {e}"
    );
    assert!(!e.contains(&pw), "skopeo echoed the password");
    // And by curl, trusting the CA: 401 with a Basic challenge for the image's realm.
    // curl trusting the CA; the credentials go in a config read from stdin, not argv.
    let curl = |scheme: &str, user: Option<&str>| {
        let mut c = Command::new("curl");
        c.args(["--noproxy", "*", "--cacert"])
            .arg(reg.ca_pem())
            .arg(format!("{scheme}://localhost:{}/v2/", reg.port()));
        curl_status(c, user)
    };
    let o = curl("https", None);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "401", "{}", text(&o));
    let o = curl("https", Some(&format!("{}:nope", reg.user())));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "401", "{}", text(&o));
    let o = curl("https", Some(&good));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "200", "{}", text(&o));

    // Plain HTTP is refused: the TLS listener answers 400 and serves no API.
    let o = curl("http", Some(&good));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "400", "{}", text(&o));
    let mut opts = picaboot::registry::PushOptions::new(
        &out,
        "tx-debian",
        reg.reference("tx-debian").parse().unwrap(),
    );
    opts.plain_http = true;
    opts.credentials = Some(picaboot::registry::Credentials {
        username: reg.user().into(),
        password: reg.password().clone(),
        source: "test".into(),
    });
    let e = picaboot::registry::push(&opts, &|_| {}).unwrap_err();
    assert!(e.to_string().contains("HTTP 400"), "{e}");

    // The password is in no log: the registry's, nor the push's error, nor any output above.
    let log = std::fs::read_to_string(reg.log_path()).unwrap();
    assert!(!log.is_empty());
    assert!(!log.contains(&pw), "the registry logged the password");
    assert!(!format!("{e} {e:?} {reg:?}").contains(&pw));
}

#[test]
fn test_registry_ca_is_trusted_for_its_origin_only_and_by_the_cli_with_ca_file() {
    let t = tempfile::tempdir().unwrap();
    let reg = TestRegistry::start(
        &common::root().join("images"),
        &t.path().join("reg"),
        "localhost",
    )
    .unwrap();
    let pw = reg.password().clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let to = reg.reference("probe").parse().unwrap();
        let creds = picaboot::registry::Credentials {
            username: reg.user().into(),
            password: pw.clone(),
            source: "test".into(),
        };
        let s = Session::connect(&to, false, Some(reg.ca_pem()), Some(creds.clone()))
            .await
            .unwrap();
        // The same server under another origin (localhost instead of 127.0.0.1, the
        // certificate names both): the CA is not trusted there.
        let other = reqwest::Url::parse(&format!("https://localhost:{}/v2/", reg.port())).unwrap();
        let e = s
            .request(reqwest::Method::GET, other)
            .send()
            .await
            .unwrap_err();
        let e = picaboot::registry::client::describe(&e);
        assert!(e.contains("not trusted"), "{e}");
        // Without the CA file the registry itself is not trusted either.
        let e = Session::connect(&to, false, None, Some(creds))
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("not trusted by the system roots"),
            "{e}"
        );
    });

    // The CLI: `image push --ca-file` over TLS with the credentials from the environment.
    let layout = t.path().join("layout");
    let hand = common::oci::write_layout(&layout, &[b"picaboot test layer"], false);
    let to = reg.reference("cli");
    let run = |extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_picaboot"));
        c.args([
            "image",
            "push",
            "tx",
            "--layout",
            layout.to_str().unwrap(),
            "--to",
            &to,
        ])
        .args(extra)
        .env("PICABOOT_REGISTRY_USERNAME", reg.user())
        .env("PICABOOT_REGISTRY_PASSWORD", pw.expose())
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .env("HOME", t.path())
        .stdin(Stdio::null());
        c.output().unwrap()
    };
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("not trusted by the system roots"),
        "{}",
        text(&o)
    );
    let o = run(&["--ca-file", reg.ca_pem().to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["manifest_digest"], hand.manifest.as_str());
    assert!(!text(&o).contains(pw.expose()));
    // A CA file that is not PEM: a user error naming the file.
    let bad = t.path().join("bad.pem");
    std::fs::write(&bad, "not a certificate\n").unwrap();
    let o = run(&["--ca-file", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains(bad.to_str().unwrap()), "{}", text(&o));
    assert!(!std::fs::read_to_string(reg.log_path())
        .unwrap()
        .contains(pw.expose()));
}

use common::Container;

/// Runs `archive` detached (the flags `image test` uses) with `mounts` (host dir, inside).
fn run_container(tag: &str, archive: &Path, mounts: &[(&Path, &str)]) -> Container {
    let name = format!("picaboot-test-registry-{tag}-{}", std::process::id());
    let _ = Command::new("podman").args(["rm", "-f", &name]).output();
    let mut cmd = Command::new("podman");
    cmd.args(["run", "-d", "--name", &name])
        .args(picaboot::image::runtest::podman_run_args(1024));
    for (host, inside) in mounts {
        cmd.arg("-v").arg(format!("{}:{inside}:ro", host.display()));
    }
    cmd.arg(format!("oci-archive:{}", archive.display()));
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    Container(name)
}

/// `curl` inside the container against https://localhost:5000/v2/ trusting /certs/ca.crt.
fn curl_in(c: &Container, user: Option<&str>) -> String {
    let mut cmd = Command::new("podman");
    cmd.args(["exec", "-i", &c.0, "curl", "--cacert", "/certs/ca.crt"])
        .arg("https://localhost:5000/v2/");
    String::from_utf8_lossy(&curl_status(cmd, user).stdout).into_owned()
}

/// Runs `curl` (the command given, up to its URL) printing only the HTTP status on stdout;
/// `user` (`name:password`) goes in a config curl reads on stdin, never on a command line.
fn curl_status(mut cmd: Command, user: Option<&str>) -> Output {
    let mut child = cmd
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-K", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut i = child.stdin.take().unwrap();
    if let Some(u) = user {
        use std::io::Write;
        writeln!(i, "user = \"{u}\"").unwrap();
    }
    drop(i);
    child.wait_with_output().unwrap()
}

#[test]
fn tx_registry_image_passes_its_check_serves_tls_and_auth_and_refuses_to_run_without_them() {
    common::require("podman", "podman");
    common::require("htpasswd", "apache2-utils");
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let images = common::root().join("images");
    let built = test_registry::build_image(
        &images,
        &common::root().join("profiles"),
        "tx-registry",
        &out,
        BuildMirror::Host,
        None,
    )
    .unwrap();
    assert_eq!(built.last().unwrap().name, "tx-registry");
    let archive = out.join("tx-registry.oci.tar");
    // Its declared check: `docker-registry --version`, and the image's config.yml parses.
    let specs = picaboot::image::load(&images).unwrap();
    picaboot::image::runtest::run_check(&specs.by_name["tx-registry"], &archive, &mut |m| {
        eprintln!("{m}")
    })
    .unwrap_or_else(|e| panic!("{e}"));

    // With the certificate, key and htpasswd file mounted, as on the admin VM: TLS on :5000,
    // 401 without credentials or with a wrong password, 200 with the right one.
    let tls = test_registry::throwaway_tls(&t.path().join("tls"), "localhost").unwrap();
    let (certs, auth) = (t.path().join("certs"), t.path().join("auth"));
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::create_dir_all(&auth).unwrap();
    std::fs::copy(&tls.cert, certs.join("tls.crt")).unwrap();
    std::fs::copy(&tls.key, certs.join("tls.key")).unwrap();
    std::fs::copy(&tls.ca_pem, certs.join("ca.crt")).unwrap();
    let pw = test_registry::random_password().unwrap();
    test_registry::write_htpasswd(&auth.join("htpasswd"), "admin", &pw).unwrap();
    let c = run_container("mounted", &archive, &[(&certs, "/certs"), (&auth, "/auth")]);
    let t0 = Instant::now();
    let mut status = curl_in(&c, None);
    while status != "401" && t0.elapsed().as_secs() < 30 {
        std::thread::sleep(std::time::Duration::from_millis(250));
        status = curl_in(&c, None);
    }
    assert_eq!(status, "401", "no TLS answer on :5000 within 30 s");
    assert_eq!(curl_in(&c, Some("admin:wrong")), "401");
    assert_eq!(curl_in(&c, Some(&format!("admin:{}", pw.expose()))), "200");
    let logs = Command::new("podman")
        .args(["logs", &c.0])
        .output()
        .unwrap();
    assert!(
        !text(&logs).contains(pw.expose()),
        "the password is in the container's log"
    );
    drop(c);

    // Without them the registry is not started: no htpasswd provisioned, no password logged.
    let c = run_container("bare", &archive, &[]);
    let t0 = Instant::now();
    let mut logs = String::new();
    while !logs.contains("is missing or empty") && t0.elapsed().as_secs() < 30 {
        std::thread::sleep(std::time::Duration::from_millis(250));
        logs = text(
            &Command::new("podman")
                .args(["logs", &c.0])
                .output()
                .unwrap(),
        );
    }
    assert!(
        logs.contains("registry-foreground: /certs/tls.crt is missing or empty"),
        "{logs}"
    );
    assert!(!logs.contains("password="), "{logs}");
    let o = Command::new("podman")
        .args(["exec", &c.0, "test", "-e", "/auth/htpasswd"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "an htpasswd file was provisioned: {}",
        text(&o)
    );
}
