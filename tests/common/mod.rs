//! Shared helpers of the netboot tests: this machine's Debian mirror (read at run time from
//! apt's sources), a tiny HTTP server over a directory, tool checks that fail with the
//! Debian package to install.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// This machine's Debian mirror.
pub fn mirror() -> String {
    picaboot::debian::sources::system_mirror()
        .expect("this machine's apt sources name a Debian mirror")
}

/// A cache shared by the tests of this checkout (kept between runs, so they are warm).
pub fn shared_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("picaboot-cache")
}

/// Fails (never skips) when a program is missing, naming its Debian package.
pub fn require(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
                .any(|d| d.join(program).is_file())
        })
        .unwrap_or(false);
    assert!(found, "`{program}` is missing: install the Debian package `{package}` (scripts/apt-packages.d/netboot.txt)");
}

/// Makes sure sbin directories are on PATH (depmod lives in /usr/sbin).
pub fn sbin_path() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let p = std::env::var("PATH").unwrap_or_default();
        if !p.split(':').any(|d| d == "/usr/sbin") {
            // Tests run single-process; PATH is only extended, never replaced.
            std::env::set_var("PATH", format!("{p}:/usr/sbin:/sbin"));
        }
    });
}

/// Serves `dir` over HTTP on 127.0.0.1 (GET only, 404 for missing files); returns the base URL.
pub fn serve_dir(dir: &Path) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let root = dir.to_path_buf();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let root = root.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let file = root.join(path.trim_start_matches('/'));
                let ok = !path.contains("..") && file.is_file();
                if ok {
                    let mut f = std::fs::File::open(&file).unwrap();
                    let len = f.metadata().unwrap().len();
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
                    );
                    let mut buf = vec![0u8; 1 << 20];
                    loop {
                        let n = f.read(&mut buf).unwrap();
                        if n == 0 || stream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                } else {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                }
            });
        }
    });
    format!("http://{addr}")
}

/// Downloads `url` (test fixtures from this machine's mirror).
pub fn get(url: &str) -> Vec<u8> {
    let mut v = Vec::new();
    ureq::get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .into_reader()
        .read_to_end(&mut v)
        .unwrap();
    v
}
