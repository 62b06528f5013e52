//! A hung ssh ends within its deadline (issue 22): the real `ssh` against a TCP server on
//! loopback that accepts and never speaks (ssh waits for the server's banner). The drift
//! probe (`diff`'s code path, [`picaboot::ops::diff::run_within`]) ends within the deadline
//! plus the kill grace, with a message naming what hung, and no ssh is left running.

use crate::common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

#[test]
fn a_hung_ssh_is_killed_at_its_deadline() {
    // It changes the process environment: in a process of its own.
    if !common::own_process("ssh_deadline::a_hung_ssh_is_killed_at_its_deadline") {
        return;
    }
    common::require("ssh", "openssh-client");
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    // Accept and hold every connection, never write a byte.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().flatten() {
            held.push(s);
        }
    });
    let t = tempfile::tempdir().unwrap();
    let cfg = t.path().join("ssh_config");
    std::fs::write(&cfg, "UserKnownHostsFile /dev/null\n").unwrap();
    // Only this test in this process: the variable is read by the library here.
    std::env::set_var(picaboot::ops::ENV_SSH_CONFIG, &cfg);
    let dest = format!("ssh://root@127.0.0.1:{port}");
    let deadline = Duration::from_secs(3);
    let t0 = Instant::now();
    let e = picaboot::ops::diff::run_within(&dest, &[], deadline).unwrap_err();
    let took = t0.elapsed();
    let text = e.to_string();
    assert!(
        matches!(e, picaboot::ops::OpsError::Hung { .. }),
        "a Hung error: {text}"
    );
    assert!(
        text.contains(&format!("the drift probe on {dest}"))
            && text.contains("did not finish within 3s"),
        "names what hung and the deadline: {text}"
    );
    // The deadline, then at most the SIGTERM grace before SIGKILL, and a margin.
    assert!(
        took >= deadline && took < deadline + Duration::from_secs(5),
        "ended after {took:?}"
    );
    let left = common::processes_mentioning(&dest);
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Ctrl-C to `diff` while its ssh waits on a server that never speaks: picaboot ends the ssh
/// it started (a process group of its own, which the terminal's SIGINT does not reach) before
/// it exits 130; nothing mentioning the destination is left.
#[test]
fn sigint_to_diff_leaves_no_ssh_behind() {
    common::require("ssh", "openssh-client");
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().flatten() {
            held.push(s);
        }
    });
    let t = tempfile::tempdir().unwrap();
    let cfg = t.path().join("ssh_config");
    std::fs::write(&cfg, "UserKnownHostsFile /dev/null\n").unwrap();
    let dest = format!("ssh://root@127.0.0.1:{port}");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_picaboot"))
        .args(["diff", "alice", "--ssh", &dest, "--profiles"])
        .arg(common::root().join("profiles"))
        .env(picaboot::ops::ENV_SSH_CONFIG, &cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Until its ssh runs (the program itself, not picaboot whose arguments name it too).
    let ssh_running = || {
        common::processes_mentioning(&dest).iter().any(|p| {
            p.split_once(": ")
                .is_some_and(|(_, cmd)| cmd.starts_with("ssh "))
        })
    };
    let t0 = Instant::now();
    while !ssh_running() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "diff started no ssh to {dest} in 30 s"
        );
        assert!(child.try_wait().unwrap().is_none(), "diff ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t1 = Instant::now();
    while !common::processes_mentioning(&dest).is_empty() && t1.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = common::processes_mentioning(&dest);
    assert!(left.is_empty(), "left behind after SIGINT: {left:?}");
}
