//! `serve` trusts progress reports only from the box: the address that fetched the host's
//! kernel and initrd. Another LAN client (here 127.0.0.2, via curl --interface) gets 403 and
//! changes nothing: boot.ipxe keeps the installer, no event is recorded. What serve keeps of
//! reports is bounded however many arrive.

use crate::common::serve as in_process;

use std::process::Command;

use in_process::{raw, Running};

/// curl from `from` (a loopback address); returns (status code, body).
fn curl_from(from: &str, url: &str) -> (String, String) {
    let o = Command::new("curl")
        .args([
            "-sS",
            "--noproxy",
            "*",
            "--max-time",
            "20",
            "--interface",
            from,
        ])
        .args(["-w", "\n%{http_code}", url])
        .output()
        .expect("curl (Debian package curl)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, code) = out.rsplit_once('\n').unwrap();
    (code.to_string(), body.to_string())
}

fn tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let nb = t.path().join("alice/netboot");
    std::fs::create_dir_all(&nb).unwrap();
    std::fs::write(nb.join("linux"), "kernel\n").unwrap();
    std::fs::write(nb.join("initrd.gz"), "initrd\n").unwrap();
    std::fs::write(nb.join("boot.ipxe"), "#!ipxe\nkernel linux\n").unwrap();
    t
}

#[test]
fn a_spoofed_done_from_another_client_changes_nothing() {
    let t = tree();
    let srv = Running::start(t.path());
    let base = format!("http://{}", srv.addr);
    let install = "#!ipxe\nkernel linux\n";
    // Before the box fetched anything, nobody may report.
    let (code, _) = curl_from("127.0.0.1", &format!("{base}/progress/alice?stage=done"));
    assert_eq!(code, "403");
    // The box (127.0.0.1) boots: kernel and initrd.
    for f in ["linux", "initrd.gz"] {
        assert_eq!(
            curl_from("127.0.0.1", &format!("{base}/alice/netboot/{f}")).0,
            "200"
        );
    }
    // Another client fetches the kernel only (public files), then claims done.
    assert_eq!(
        curl_from("127.0.0.2", &format!("{base}/alice/netboot/linux")).0,
        "200"
    );
    let (code, body) = curl_from(
        "127.0.0.2",
        &format!("{base}/progress/alice?stage=done&status=ok"),
    );
    assert_eq!(code, "403", "{body}");
    assert!(srv.progress.events().is_empty());
    assert!(!srv.progress.done("alice"));
    let (code, script) = curl_from("127.0.0.2", &format!("{base}/alice/netboot/boot.ipxe"));
    assert_eq!((code.as_str(), script.as_str()), ("200", install));
    // The box itself still can.
    let (code, _) = curl_from(
        "127.0.0.1",
        &format!("{base}/progress/alice?stage=done&status=ok"),
    );
    assert_eq!(code, "200");
    assert!(srv.progress.done("alice"));
    assert_eq!(
        curl_from("127.0.0.1", &format!("{base}/alice/netboot/boot.ipxe")).1,
        picaboot::serve::disk_ipxe("alice")
    );
    let lines = srv.lines.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("progress alice from 127.0.0.2: refused")),
        "{lines:#?}"
    );
}

/// Many reports from the box (more than the kept maximum): the log keeps the last
/// MAX_PROGRESS_EVENTS, done stays known, the host table does not grow.
#[test]
fn progress_memory_is_bounded() {
    let t = tree();
    let srv = Running::start(t.path());
    for f in ["linux", "initrd.gz"] {
        assert_eq!(
            raw(srv.addr, "GET", &format!("/alice/netboot/{f}"), "").0,
            200
        );
    }
    assert_eq!(
        raw(srv.addr, "GET", "/progress/alice?stage=done", "").0,
        200
    );
    let n = picaboot::serve::MAX_PROGRESS_EVENTS + 1000;
    // One keep-alive connection, requests pipelined.
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(srv.addr).unwrap();
    let writer = {
        let mut w = s.try_clone().unwrap();
        std::thread::spawn(move || {
            for i in 0..n {
                let close = if i + 1 == n {
                    "Connection: close\r\n"
                } else {
                    ""
                };
                write!(
                    w,
                    "GET /progress/alice?stage=s{i} HTTP/1.1\r\nHost: t\r\n{close}\r\n"
                )
                .unwrap();
            }
        })
    };
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    writer.join().unwrap();
    let oks = all.windows(15).filter(|w| w == b"HTTP/1.1 200 OK").count();
    assert_eq!(oks, n);
    let ev = srv.progress.events();
    assert_eq!(ev.len(), picaboot::serve::MAX_PROGRESS_EVENTS);
    assert_eq!(ev.last().unwrap().stage, format!("s{}", n - 1));
    assert!(srv.progress.done("alice"), "done kept after the log rolled");
    // alice's one fetcher and its done mark.
    assert_eq!(srv.progress.tracked_hosts(), 2);
}
