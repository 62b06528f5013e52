//! `picaboot serve --syslog`: installers' syslog received over UDP on serve's address, each
//! install phase and failure printed as it happens. The sender is util-linux's `logger`
//! (RFC 3164 over UDP, as d-i's busybox syslogd forwards with `log_host=`/`log_port=`).

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[test]
fn serve_prints_the_phases_and_failures_an_installer_logs_over_udp() {
    common::require("logger", "bsdutils");
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_picaboot"))
        .arg("serve")
        .arg(dir.path())
        .args(["--listen", &format!("127.0.0.1:{port}"), "--syslog"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let stderr = serve.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut banner = String::new();
    BufReader::new(serve.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    assert!(banner.contains("picaboot serve"), "{banner}");
    let log = |tag: &str, msg: &str| {
        common::run_ok(Command::new("logger").args([
            "--udp",
            "-n",
            "127.0.0.1",
            "-P",
            &port.to_string(),
            "--rfc3164",
            "-t",
            tag,
            msg,
        ]));
    };
    let mut seen: Vec<String> = Vec::new();
    let mut expect = |want: &str| {
        let start = Instant::now();
        while !seen.iter().any(|l| l.starts_with(want)) {
            let left = Duration::from_secs(20).saturating_sub(start.elapsed());
            match rx.recv_timeout(left) {
                Ok(l) => seen.push(l),
                Err(_) => panic!("serve did not print `{want}…`; it printed {seen:?}"),
            }
        }
        seen.clone()
    };
    log("main-menu[312]", "INFO: Menu item 'netcfg' selected");
    expect("serve: install 127.0.0.1: phase boot-to-network");
    log("udhcpc", "Got IP 10.0.2.15");
    log("main-menu[312]", "INFO: Menu item 'partman-base' selected");
    expect("serve: install 127.0.0.1: phase partitioning");
    log("log-output", "Failed to run preseeded command");
    let all = expect("serve: install 127.0.0.1: FAILED: ");
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(
        all.iter()
            .any(|l| l.starts_with("serve: install 127.0.0.1: FAILED: ")
                && l.ends_with("Failed to run preseeded command")),
        "{all:?}"
    );
    // One line per phase change or failure: the other lines are not printed.
    assert!(!all.iter().any(|l| l.contains("Got IP")), "{all:?}");
    assert_eq!(
        all.iter()
            .filter(|l| l.starts_with("serve: install"))
            .count(),
        3,
        "{all:?}"
    );
}
