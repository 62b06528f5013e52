//! `serve` under hostile conditions: a symlink flipped to `/etc` while requests run, 200
//! concurrent clients (`wrk`), and 50 clients sending their headers one byte a second while a
//! normal client is served.

use crate::common;
use crate::common::serve as in_process;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use in_process::{raw, Running};
use picaboot::serve::HEADER_READ_TIMEOUT;

/// One HTTP/1.1 GET on a fresh connection: (status, body).
fn get(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let (status, _, body) = raw(addr, "GET", path, "");
    (status, body)
}

#[test]
fn a_symlink_flipped_to_etc_never_leaks_a_byte() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    std::fs::create_dir_all(root.join("inside")).unwrap();
    std::fs::write(root.join("inside/passwd"), b"INSIDE\n").unwrap();
    std::fs::write(root.join("inside/hostname"), b"INSIDE\n").unwrap();
    std::os::unix::fs::symlink("inside", root.join("flip")).unwrap();
    let etc_passwd = std::fs::read("/etc/passwd").unwrap();
    let server = Running::start(&root);

    // The attacker: swaps `flip` between `inside` and `/etc` (atomically, by rename) as fast
    // as it can.
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (root, stop) = (root.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut flips = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let target = if flips.is_multiple_of(2) {
                    "/etc"
                } else {
                    "inside"
                };
                let tmp = root.join(".flip.tmp");
                let _ = std::fs::remove_file(&tmp);
                std::os::unix::fs::symlink(target, &tmp).unwrap();
                std::fs::rename(&tmp, root.join("flip")).unwrap();
                flips += 1;
            }
            flips
        })
    };
    let (mut inside, mut refused, mut requests) = (0, 0, 0);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(6) || inside == 0 || refused == 0 {
        for path in ["/flip/passwd", "/flip/hostname"] {
            let (status, body) = get(server.addr, path);
            requests += 1;
            match status {
                200 => {
                    assert_eq!(body, b"INSIDE\n", "{path}: a byte from outside the tree");
                    inside += 1;
                }
                403 | 404 => refused += 1,
                other => panic!("{path}: unexpected status {other}"),
            }
            assert!(body != etc_passwd);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no mix of outcomes"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let flips = flipper.join().unwrap();
    eprintln!(
        "symlink race: {requests} requests during {flips} flips: {inside} served from inside, {refused} refused, 0 from /etc"
    );
}

#[test]
fn two_hundred_concurrent_clients_get_no_error() {
    common::require("wrk", "wrk");
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("alice/netboot")).unwrap();
    let body: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    std::fs::write(t.path().join("alice/netboot/initrd.gz"), &body).unwrap();
    let server = Running::start(t.path());
    let url = format!("http://{}/alice/netboot/initrd.gz", server.addr);
    let out = Command::new("wrk")
        .args([
            "-t",
            "2",
            "-c",
            "200",
            "-d",
            "8s",
            "--timeout",
            "10s",
            "--latency",
            &url,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("wrk, 200 connections:\n{text}");
    // wrk prints these lines only when something went wrong.
    assert!(!text.contains("Socket errors"), "{text}");
    assert!(!text.contains("Non-2xx"), "{text}");
    let requests: u64 = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .map(|(n, _)| n.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no request count in: {text}"));
    assert!(requests >= 200, "{text}");
}

#[test]
fn fifty_slow_header_clients_do_not_stop_a_normal_one() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("h")).unwrap();
    std::fs::write(t.path().join("h/boot.ipxe"), b"#!ipxe\n").unwrap();
    let server = Running::start(t.path());

    // 50 clients, each sending its request head one byte a second.
    let head = b"GET /h/boot.ipxe HTTP/1.1\r\nHost: slow\r\nUser-Agent: slowloris\r\n\r\n";
    let stop = Arc::new(AtomicBool::new(false));
    let slow: Vec<_> = (0..50)
        .map(|_| {
            let (addr, stop) = (server.addr, stop.clone());
            std::thread::spawn(move || -> (Duration, bool) {
                let mut s = TcpStream::connect(addr).unwrap();
                let t0 = Instant::now();
                for b in head.iter() {
                    if stop.load(Ordering::Relaxed) || s.write_all(&[*b]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
                // Closed by the server (EOF, reset or a 408) when its header timeout ran out.
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let mut buf = [0u8; 512];
                let closed = match s.read(&mut buf) {
                    Ok(0) | Err(_) => true,
                    Ok(n) => String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"),
                };
                (t0.elapsed(), closed)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let t0 = Instant::now();
        let (status, body) = get(server.addr, "/h/boot.ipxe");
        let took = t0.elapsed();
        assert_eq!((status, body.as_slice()), (200, &b"#!ipxe\n"[..]));
        assert!(
            took < Duration::from_secs(1),
            "a normal client waited {took:?}"
        );
        worst = worst.max(took);
        std::thread::sleep(Duration::from_secs(1));
    }
    let results: Vec<_> = slow.into_iter().map(|h| h.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    let all_closed = results.iter().all(|(_, c)| *c);
    let longest = results.iter().map(|(d, _)| *d).max().unwrap();
    eprintln!(
        "slow clients: normal client served in at most {worst:?} with 50 slow clients; slow ones closed after at most {longest:?}"
    );
    assert!(all_closed, "a slow client was never closed: {results:?}");
    assert!(
        longest < HEADER_READ_TIMEOUT + Duration::from_secs(5),
        "the header timeout did not close slow clients: {longest:?}"
    );
}
