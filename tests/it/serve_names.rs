//! Served directory names are anyone's: a name with U+202E (right-to-left override) or U+2028
//! (line separator) reaches neither serve's banner nor its log raw; it is written `\u{202e}`.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn bidi_and_line_separators_are_escaped_in_banner_and_log() {
    let dir = tempfile::tempdir().unwrap();
    for h in ["al\u{202e}ecila", "b\u{2028}ob"] {
        let nb = dir.path().join(h).join("netboot");
        std::fs::create_dir_all(&nb).unwrap();
        std::fs::write(nb.join("boot.ipxe"), "#!ipxe\n").unwrap();
    }
    let mut serve = Command::new(env!("CARGO_BIN_EXE_picaboot"))
        .arg("serve")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(serve.stdout.take().unwrap());
    let mut banner = String::new();
    let start = Instant::now();
    while !banner.contains("progress:") {
        assert!(start.elapsed() < Duration::from_secs(20), "{banner}");
        let mut l = String::new();
        if out.read_line(&mut l).unwrap() == 0 {
            break;
        }
        banner += &l;
    }
    let addr = banner
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap()
        .to_string();
    // A request naming the directory with its raw UTF-8 bytes, and one percent-encoded.
    for target in [
        b"/al\xe2\x80\xaeecila/netboot/boot.ipxe".to_vec(),
        b"/b\xe2\x80\xa8ob/netboot/boot.ipxe".to_vec(),
        b"/al%E2%80%AEecila/netboot/boot.ipxe".to_vec(),
    ] {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET ").unwrap();
        s.write_all(&target).unwrap();
        s.write_all(b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut resp = Vec::new();
        let _ = s.read_to_end(&mut resp);
    }
    let _ = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status();
    let _ = serve.wait();
    let mut log = String::new();
    serve
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    for (what, text) in [("banner", &banner), ("log", &log)] {
        assert!(
            !text.contains('\u{202e}') && !text.contains('\u{2028}'),
            "{what} carries a raw U+202E/U+2028: {text:?}"
        );
    }
    assert!(banner.contains("al\\u{202e}ecila"), "{banner}");
    assert!(banner.contains("b\\u{2028}ob"), "{banner}");
    assert!(log.contains("GET /al"), "{log}");
}
