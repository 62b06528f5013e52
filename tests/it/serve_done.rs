//! `picaboot serve`: once a host reported `stage=done`, its boot.ipxe boots the local disk
//! (no loop back into the installer); other hosts and earlier stages keep the install script.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn get(url: &str) -> String {
    reqwest::blocking::get(url)
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.text())
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

#[test]
fn boot_ipxe_boots_from_disk_after_done() {
    let dir = tempfile::tempdir().unwrap();
    for h in ["alice", "bob"] {
        let d = dir.path().join(h).join("netboot");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("boot.ipxe"), format!("#!ipxe\nkernel linux {h}\n")).unwrap();
        std::fs::write(d.join("linux"), "kernel\n").unwrap();
        std::fs::write(d.join("initrd.gz"), "initrd\n").unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_picaboot"))
        .arg("serve")
        .arg(dir.path())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "serve did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let base = format!("http://127.0.0.1:{port}");
    let boot = |h: &str| get(&format!("{base}/{h}/netboot/boot.ipxe"));
    assert_eq!(boot("alice"), "#!ipxe\nkernel linux alice\n");
    // The box: this client fetches alice's kernel and initrd, as iPXE does.
    get(&format!("{base}/alice/netboot/linux"));
    get(&format!("{base}/alice/netboot/initrd.gz"));
    get(&format!(
        "{base}/progress/alice?stage=late_command&status=ok"
    ));
    assert_eq!(boot("alice"), "#!ipxe\nkernel linux alice\n");
    get(&format!("{base}/progress/alice?stage=done&status=ok"));
    let script = boot("alice");
    let bob = boot("bob");
    let _ = serve.kill();
    let _ = serve.wait();
    assert_eq!(script, picaboot::serve::disk_ipxe("alice"));
    assert_eq!(bob, "#!ipxe\nkernel linux bob\n", "bob did not report done");
    assert!(
        script.contains("sanboot --no-describe --drive 0x80 || exit"),
        "{script}"
    );
}
