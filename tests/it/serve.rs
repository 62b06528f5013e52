//! `picaboot serve`: files (whole and ranges), refusals, progress endpoint, shutdown; once
//! through the library on an ephemeral loopback port, once through the binary with curl.

use crate::common;
use crate::common::serve as in_process;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use in_process::{raw, Running};

/// A netboot-like tree with a file larger than one read chunk.
fn tree() -> (tempfile::TempDir, tempfile::TempDir, Vec<u8>) {
    let t = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "outside secret\n").unwrap();
    let nb = t.path().join("alice/netboot");
    std::fs::create_dir_all(&nb).unwrap();
    let mut x: u32 = 12345;
    let big: Vec<u8> = (0..(1 << 20) + 333)
        .map(|_| {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    std::fs::write(nb.join("initrd.gz"), &big).unwrap();
    std::fs::write(nb.join("linux"), "kernel\n").unwrap();
    std::fs::write(nb.join("boot.ipxe"), "#!ipxe\nkernel linux\n").unwrap();
    std::fs::write(nb.join("empty"), "").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), t.path().join("alice/leak")).unwrap();
    std::os::unix::fs::symlink("/etc", t.path().join("etc")).unwrap();
    std::os::unix::fs::symlink("netboot/boot.ipxe", t.path().join("alice/menu")).unwrap();
    (t, outside, big)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::trim))
}

#[test]
fn serve_whole_files_and_ranges() {
    let (t, _o, big) = tree();
    let mut srv = Running::start(t.path());
    let a = srv.addr;

    let (st, head, body) = raw(a, "GET", "/alice/netboot/initrd.gz", "");
    assert_eq!(st, 200);
    assert_eq!(
        header(&head, "content-length"),
        Some(big.len().to_string().as_str())
    );
    assert_eq!(header(&head, "accept-ranges"), Some("bytes"));
    assert!(body == big, "whole file differs");

    let (st, head, body) = raw(a, "HEAD", "/alice/netboot/initrd.gz", "");
    assert_eq!(st, 200);
    assert_eq!(
        header(&head, "content-length"),
        Some(big.len().to_string().as_str())
    );
    assert!(body.is_empty());

    let n = big.len();
    for (spec, lo, hi) in [
        ("bytes=0-0", 0, 0),
        ("bytes=100-70000", 100, 70000),
        ("bytes=1000000-", 1_000_000, n - 1),
        ("bytes=-500", n - 500, n - 1),
        ("bytes=5-99999999", 5, n - 1),
    ] {
        let (st, head, body) = raw(
            a,
            "GET",
            "/alice/netboot/initrd.gz",
            &format!("Range: {spec}\r\n"),
        );
        assert_eq!(st, 206, "{spec}");
        assert_eq!(
            header(&head, "content-range"),
            Some(format!("bytes {lo}-{hi}/{n}").as_str()),
            "{spec}"
        );
        assert_eq!(
            header(&head, "content-length"),
            Some((hi - lo + 1).to_string().as_str()),
            "{spec}"
        );
        assert!(body == big[lo..=hi], "{spec}: bytes differ");
    }
    for spec in ["bytes=2000000-", "bytes=-0"] {
        let (st, head, body) = raw(
            a,
            "GET",
            "/alice/netboot/initrd.gz",
            &format!("Range: {spec}\r\n"),
        );
        assert_eq!(st, 416, "{spec}");
        assert_eq!(
            header(&head, "content-range"),
            Some(format!("bytes */{n}").as_str())
        );
        assert!(body.is_empty());
    }
    // Several ranges: served whole (allowed by RFC 9110).
    let (st, _, body) = raw(
        a,
        "GET",
        "/alice/netboot/initrd.gz",
        "Range: bytes=0-1,5-6\r\n",
    );
    assert_eq!(st, 200);
    assert_eq!(body.len(), n);
    // An empty file, and a symlink that stays inside the tree.
    let (st, head, body) = raw(a, "GET", "/alice/netboot/empty", "");
    assert_eq!(
        (st, header(&head, "content-length"), body.len()),
        (200, Some("0"), 0)
    );
    let (st, _, body) = raw(a, "GET", "/alice/menu", "");
    assert_eq!((st, body.as_slice()), (200, &b"#!ipxe\nkernel linux\n"[..]));
    // Methods other than GET/HEAD.
    let (st, head, _) = raw(
        a,
        "PUT",
        "/alice/netboot/initrd.gz",
        "Content-Length: 0\r\n",
    );
    assert_eq!(st, 405);
    assert_eq!(header(&head, "allow"), Some("get, head"));

    srv.stop();
    let lines = srv.lines.lock().unwrap().clone();
    let whole = format!("GET /alice/netboot/initrd.gz 200 {n}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("127.0.0.1:") && l.ends_with(&whole)),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("GET /alice/netboot/initrd.gz 206 69901")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("HEAD /alice/netboot/initrd.gz 200 0")),
        "{lines:#?}"
    );
    assert_eq!(lines.last().map(String::as_str), Some("stopped"));
}

#[test]
fn serve_refuses_escapes() {
    let (t, _o, _) = tree();
    let srv = Running::start(t.path());
    let a = srv.addr;
    for (target, want) in [
        ("/../etc/passwd", 403),
        ("/alice/../../etc/passwd", 403),
        ("/alice/%2e%2e/%2e%2e/etc/passwd", 403),
        ("/alice%2f..%2f..%2fetc%2fpasswd", 403),
        ("/alice/leak", 403),
        ("/etc/passwd", 403),
        ("//etc/passwd", 403),
        ("/nothing", 404),
        ("/alice/netboot", 404),
        ("/alice/netboot/boot.ipxe%00.png", 403),
    ] {
        let (st, _, body) = raw(a, "GET", target, "");
        assert_eq!(st, want, "{target}");
        assert!(
            !String::from_utf8_lossy(&body).contains("root:")
                && !String::from_utf8_lossy(&body).contains("secret")
        );
    }
}

#[test]
fn serve_progress_endpoint_logs() {
    let (t, _o, _) = tree();
    let nb = t.path().join("bob/netboot");
    std::fs::create_dir_all(&nb).unwrap();
    std::fs::write(nb.join("linux"), "kernel\n").unwrap();
    std::fs::write(nb.join("initrd.gz"), "initrd\n").unwrap();
    let mut srv = Running::start(t.path());
    let a = srv.addr;
    // Reports are accepted from the box that fetched the host's kernel and initrd.
    for h in ["alice", "bob"] {
        for f in ["linux", "initrd.gz"] {
            assert_eq!(raw(a, "GET", &format!("/{h}/netboot/{f}"), "").0, 200);
        }
    }
    let (st, _, body) = raw(
        a,
        "GET",
        "/progress/alice?stage=late_command&status=done",
        "",
    );
    assert_eq!((st, body.as_slice()), (200, &b"ok\n"[..]));
    let (st, _, _) = raw(
        a,
        "POST",
        "/progress/bob?stage=partman&status=start",
        "Content-Length: 0\r\n",
    );
    assert_eq!(st, 200);
    let (st, _, _) = raw(a, "GET", "/progress/..%2fx?stage=a", "");
    assert_eq!(st, 400);
    let (st, head, _) = raw(a, "DELETE", "/progress/alice", "");
    assert_eq!((st, header(&head, "allow")), (405, Some("get, post")));
    let ev = srv.progress.events();
    assert_eq!(ev.len(), 2);
    assert_eq!(
        (
            ev[0].host.as_str(),
            ev[0].stage.as_str(),
            ev[0].status.as_str()
        ),
        ("alice", "late_command", "done")
    );
    srv.stop();
    let lines = srv.lines.lock().unwrap().clone();
    assert!(
        lines.contains(&"progress alice: late_command done".to_string()),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"progress bob: partman start".to_string()),
        "{lines:#?}"
    );
}

fn curl() -> Command {
    common::require("curl", "curl");
    let mut c = Command::new("curl");
    c.args(["-sS", "--noproxy", "*", "--max-time", "20"]);
    c
}

#[test]
fn serve_binary_with_curl_and_sigterm() {
    let (t, _o, big) = tree();
    let mut child = Command::new(env!("CARGO_BIN_EXE_picaboot"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg(t.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let pid = child.id();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut stderr = child.stderr.take().unwrap();
    let guard = Kill(child);
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let url = first.trim().rsplit(' ').next().unwrap().to_string();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with('/'),
        "{first}"
    );
    let mut rest = String::new();
    out.read_line(&mut rest).unwrap();
    assert!(
        rest.contains("alice: http://127.0.0.1:") && rest.contains("/alice/netboot/boot.ipxe"),
        "{rest}"
    );

    let d = tempfile::tempdir().unwrap();
    let got = d.path().join("initrd");
    let st = curl()
        .arg("-o")
        .arg(&got)
        .arg(format!("{url}alice/netboot/initrd.gz"))
        .status()
        .unwrap();
    assert!(st.success());
    assert!(std::fs::read(&got).unwrap() == big);

    let part = curl()
        .args(["-r", "4096-8191"])
        .arg(format!("{url}alice/netboot/initrd.gz"))
        .output()
        .unwrap();
    assert!(part.status.success());
    assert!(part.stdout == big[4096..8192]);

    let esc = curl()
        .args(["--path-as-is", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("{url}alice/../../../../etc/passwd"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&esc.stdout), "403");

    let kernel = curl()
        .args(["-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("{url}alice/netboot/linux"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&kernel.stdout), "200");
    let prog = curl()
        .arg(format!(
            "{url}progress/alice?stage=late_command&status=done"
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&prog.stdout), "ok\n");

    let st = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let mut guard = guard;
    let code = guard.0.wait().unwrap();
    assert!(code.success(), "serve exited with {code:?}");
    let mut log = String::new();
    stderr.read_to_string(&mut log).unwrap();
    assert!(
        log.contains(&format!("GET /alice/netboot/initrd.gz 200 {}", big.len())),
        "{log}"
    );
    assert!(
        log.contains("GET /alice/netboot/initrd.gz 206 4096"),
        "{log}"
    );
    assert!(
        log.contains("GET /alice/../../../../etc/passwd 403"),
        "{log}"
    );
    assert!(
        log.contains("serve: progress alice: late_command done"),
        "{log}"
    );
    assert!(log.trim_end().ends_with("serve: stopped"), "{log}");
}

#[test]
fn serve_cli_errors_have_exit_codes() {
    let bin = env!("CARGO_BIN_EXE_picaboot");
    let o = Command::new(bin)
        .args(["serve", "/nonexistent/picaboot-out"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot serve /nonexistent/picaboot-out"));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let t = tempfile::tempdir().unwrap();
    let o = Command::new(bin)
        .args(["serve", "--listen", &addr])
        .arg(t.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("cannot listen on {addr}")));
}

#[test]
fn serve_stops_cleanly_on_ctrl_c() {
    let (t, _o, _) = tree();
    let mut child = Command::new(env!("CARGO_BIN_EXE_picaboot"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg(t.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    // Only the first line is read, then stdout is closed: the server must keep serving.
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first.trim().rsplit(' ').next().unwrap().to_string();
    let o = curl()
        .arg(format!("{url}alice/netboot/boot.ipxe"))
        .output()
        .unwrap();
    assert_eq!(o.stdout, b"#!ipxe\nkernel linux\n");
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    assert!(
        matches!(st, Ok(s) if s.success()),
        "kill(1) missing? (Debian package: procps)"
    );
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("GET /alice/netboot/boot.ipxe 200 20")
            && log.trim_end().ends_with("serve: stopped"),
        "{log}"
    );
}
