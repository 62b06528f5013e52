//! Hostile servers (issue 22, "bounded reads"): a Debian mirror and a registry on loopback
//! that answer with an endless body, a huge `Content-Length` or an endless chunked body. Each
//! read is bounded by the limit of its kind (src/limits.rs): the command exits 2 with an error
//! that names the limit and the URL, and its peak memory (`/usr/bin/time`'s maximum resident
//! set size) stays within the limit above that of the same command answered with a short
//! error, measured in the same test.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;

use picaboot::limits::{self, Limit};

/// How the hostile server answers the request it is pointed at.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// `200`, no length, `Connection: close`, then bytes until `cap`.
    Endless,
    /// `200` with `Content-Length: 99999999999`, then bytes until `cap`.
    HugeLength,
    /// `200` chunked, 64 KiB chunks until `cap`, never the last chunk.
    Chunked,
    /// `404` (the baseline: the same command failing early on a short answer).
    NotFound,
    /// `500` with an endless body (the registry's error text).
    ErrorEndless,
}

/// What the server does at a path: a fixed answer or the hostile `Mode`.
type Route = Box<dyn Fn(&str, &str) -> Option<Vec<u8>> + Send + Sync>;

fn answer(s: TcpStream, mode: Mode, cap: u64, route: &dyn Fn(&str, &str) -> Option<Vec<u8>>) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" || h == "\n" {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; len];
        if std::io::Read::read_exact(&mut r, &mut body).is_err() {
            return;
        }
        if let Some(fixed) = route(&method, &path) {
            if w.write_all(&fixed).is_err() {
                return;
            }
            continue;
        }
        let head: &[u8] = match mode {
            Mode::Endless => b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
            Mode::HugeLength => {
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\n"
            }
            Mode::Chunked => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            Mode::NotFound => {
                let _ = w.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                return;
            }
            Mode::ErrorEndless => {
                b"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\n"
            }
        };
        if w.write_all(head).is_err() {
            return;
        }
        let chunk = vec![b'A'; 64 << 10];
        let mut sent = 0u64;
        while sent < cap {
            let ok = match mode {
                Mode::Chunked => w
                    .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .and_then(|_| w.write_all(&chunk))
                    .and_then(|_| w.write_all(b"\r\n")),
                _ => w.write_all(&chunk),
            };
            if ok.is_err() {
                return;
            }
            sent += chunk.len() as u64;
        }
        return;
    }
}

/// Runs picaboot under `/usr/bin/time`; returns (exit code, output, peak RSS in bytes).
fn run_measured(args: &[&str]) -> (Option<i32>, String, u64) {
    common::require("/usr/bin/time", "time");
    let t = tempfile::tempdir().unwrap();
    let rss = t.path().join("rss");
    let o = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss)
        .arg(env!("CARGO_BIN_EXE_picaboot"))
        .args(args)
        .current_dir(common::root())
        .env_remove("PICABOOT_PROFILES")
        .env("http_proxy", "")
        .env("no_proxy", "*")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let kb: u64 = std::fs::read_to_string(&rss)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code(), text, kb * 1024)
}

/// Slack above baseline + limit for buffers (reqwest's and ours), allocator rounding and a
/// vector's growth past the limit (a doubling: at most the limit again).
fn allowed(baseline: u64, limit: Limit) -> u64 {
    baseline + 2 * limit.bytes + (8 << 20)
}

fn netboot(mirror: &str, dir: &Path) -> (Option<i32>, String, u64) {
    let out = dir.join("out");
    let cache = dir.join("cache");
    run_measured(&[
        "netboot",
        "alice",
        "--mirror",
        mirror,
        "--cache",
        cache.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ])
}

#[test]
fn a_hostile_mirror_is_stopped_at_the_inrelease_limit() {
    let dir = tempfile::tempdir().unwrap();
    let no_route = |_: &'static str| -> Route { Box::new(|_: &str, _: &str| None) };
    let base = serve_leaked(Mode::NotFound, 0, no_route);
    let (code, text, baseline) = netboot(&format!("http://{base}/debian"), dir.path());
    assert_eq!(code, Some(2), "{text}");
    // Four times the limit: a client without the bound reads all of it.
    let cap = 4 * limits::INRELEASE.bytes + (1 << 20);
    for mode in [Mode::Endless, Mode::HugeLength, Mode::Chunked] {
        let addr = serve_leaked(mode, cap, no_route);
        let url = format!("http://{addr}/debian");
        let (code, text, peak) = netboot(&url, dir.path());
        assert_eq!(code, Some(2), "{mode:?}: {text}");
        let want = format!(
            "{url}/dists/trixie/InRelease: larger than the InRelease limit of 16 MiB ({} bytes)",
            limits::INRELEASE.bytes
        );
        assert!(
            text.contains(&want),
            "{mode:?}: expected `{want}` in:\n{text}"
        );
        let bound = allowed(baseline, limits::INRELEASE);
        eprintln!("{mode:?}: peak RSS {peak}, baseline {baseline}, bound {bound}");
        assert!(
            peak <= bound,
            "{mode:?}: peak RSS {peak} bytes above {bound} (baseline {baseline})"
        );
    }
}

fn push(addr: &str, layout: &Path) -> (Option<i32>, String, u64) {
    run_measured(&[
        "image",
        "push",
        "tx",
        "--to",
        &format!("{addr}/team/tx:v1"),
        "--layout",
        layout.to_str().unwrap(),
        "--plain-http",
    ])
}

/// `GET /v2/` asks for a Bearer token from `/token` on the same server.
fn bearer(addr: &'static str) -> Route {
    Box::new(move |_: &str, path: &str| {
        (path == "/v2/").then(|| {
            format!(
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://{addr}/token\",service=\"t\"\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes()
        })
    })
}

#[test]
fn a_hostile_token_service_is_stopped_at_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    common::oci::write_layout(&layout, &[], false);
    // Baseline: the token service answers 404 at once.
    let base = serve_leaked(Mode::NotFound, 0, bearer);
    let (code, text, baseline) = push(base, &layout);
    assert_eq!(code, Some(2), "{text}");
    let cap = 4 * limits::TOKEN_REPLY.bytes + (1 << 20);
    for mode in [Mode::Endless, Mode::HugeLength, Mode::Chunked] {
        let addr = serve_leaked(mode, cap, bearer);
        let (code, text, peak) = push(addr, &layout);
        assert_eq!(code, Some(2), "{mode:?}: {text}");
        let want = format!(
            "larger than the registry token reply limit of 1 MiB ({} bytes)",
            limits::TOKEN_REPLY.bytes
        );
        assert!(
            text.contains(&want),
            "{mode:?}: expected `{want}` in:\n{text}"
        );
        assert!(
            text.contains(&format!("http://{addr}/token")),
            "{mode:?}: the URL is named: {text}"
        );
        let bound = allowed(baseline, limits::TOKEN_REPLY);
        eprintln!("{mode:?}: peak RSS {peak}, baseline {baseline}, bound {bound}");
        assert!(
            peak <= bound,
            "{mode:?}: peak RSS {peak} bytes above {bound} (baseline {baseline})"
        );
    }
}

/// An error reply of the registry is read for its first [`limits::ERROR_BODY`] bytes only:
/// an endless `500` body still ends the push at once, with the start of the text shown.
#[test]
fn an_endless_error_reply_is_read_only_in_part() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    common::oci::write_layout(&layout, &[], false);
    let open_v2_missing_blobs = |_: &'static str| -> Route {
        Box::new(|method: &str, path: &str| match (method, path) {
            ("GET", "/v2/") => Some(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec()),
            ("HEAD", _) => Some(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()),
            _ => None,
        })
    };
    let base = serve_leaked(Mode::NotFound, 0, open_v2_missing_blobs);
    let (code, text, baseline) = push(base, &layout);
    assert_eq!(code, Some(2), "{text}");
    // 64 MiB of error text: a client that reads it whole holds all of it.
    let cap = 1024 * limits::ERROR_BODY.bytes;
    let addr = serve_leaked(Mode::ErrorEndless, cap, open_v2_missing_blobs);
    let (code, text, peak) = push(addr, &layout);
    assert_eq!(code, Some(2), "{text}");
    let shown = "A".repeat(limits::ERROR_BODY_SHOWN);
    assert!(
        text.contains(&format!("HTTP 500: {shown}")),
        "the start of the error text is shown: {text}"
    );
    assert!(!text.contains(&format!("{shown}A")), "and no more: {text}");
    let bound = allowed(baseline, limits::ERROR_BODY);
    eprintln!("peak RSS {peak}, baseline {baseline}, bound {bound}");
    assert!(
        peak <= bound,
        "peak RSS {peak} bytes above {bound} (baseline {baseline})"
    );
}

/// Serves on loopback: the route (made knowing the server's own address, leaked: the tests
/// are short) may answer a request with fixed bytes; every other request is answered in
/// `mode`, sending at most `cap` body bytes (so that a client that never stops reading fails
/// the memory assertion instead of hanging the test).
fn serve_leaked(mode: Mode, cap: u64, route: impl Fn(&'static str) -> Route) -> &'static str {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: &'static str = Box::leak(l.local_addr().unwrap().to_string().into_boxed_str());
    let route = std::sync::Arc::new(route(addr));
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let route = route.clone();
            std::thread::spawn(move || answer(s, mode, cap, &**route));
        }
    });
    addr
}
