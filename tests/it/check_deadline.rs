//! A hung post-install check ends within its deadline (issue 22): `ssh` on PATH is replaced
//! by a stand-in that runs the remote command (`sh -s`, the check script on stdin) on this
//! machine, as ssh runs it on the box; the check script sleeps. [`run_check`] (what
//! `reinstall` runs after first boot, with `--check-timeout`) ends within the deadline plus
//! the kill grace, with a message naming the post-install check, and neither the stand-in nor
//! the sleep it started is left running.
//!
//! [`run_check`]: picaboot::ops::post_install::run_check

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use picaboot::ops::post_install::{run_check, SshTarget};

#[test]
fn a_hung_post_install_check_is_killed_at_its_deadline() {
    // It changes the process environment: in a process of its own.
    if !common::own_process("check_deadline::a_hung_post_install_check_is_killed_at_its_deadline") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let bin = t.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    // ssh's contract as run_check uses it: options, `--`, DEST, then the remote command, whose
    // stdin is ssh's. The stand-in ignores the options and DEST and runs the command here.
    let ssh = bin.join("ssh");
    std::fs::write(
        &ssh,
        "#!/bin/sh\nwhile [ \"$1\" != -- ]; do shift; done\nshift 2\nexec \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Only this test in this process: PATH is read when the library spawns ssh.
    std::env::set_var(
        "PATH",
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
    );
    std::env::remove_var(picaboot::ops::ENV_SSH_CONFIG);
    // A sleep no other process runs: its argument is the marker looked for afterwards.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let marker = format!("3600.{nanos:09}");
    let script = format!("echo started\nsleep {marker}\necho PICABOOT-DONE 0\n");
    let target = SshTarget {
        dest: "root@192.0.2.1".into(),
        port: 22,
    };
    let deadline = Duration::from_secs(3);
    let t0 = Instant::now();
    let e = run_check(&target, &t.path().join("known_hosts"), &script, deadline).unwrap_err();
    let took = t0.elapsed();
    let text = e.to_string();
    assert!(
        matches!(e, picaboot::ops::OpsError::Hung { .. }),
        "a Hung error: {text}"
    );
    assert!(
        text.starts_with("ssh root@192.0.2.1:22: the post-install check: `ssh ")
            && text.contains("did not finish within 3s"),
        "names what hung and the deadline: {text}"
    );
    assert!(
        took >= deadline && took < deadline + Duration::from_secs(5),
        "ended after {took:?}"
    );
    let left = common::processes_mentioning(&marker);
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// The deadline is the `reinstall --check-timeout` flag, ten minutes unless given.
#[test]
fn reinstall_takes_the_check_deadline_as_a_flag() {
    let o = common::picaboot(&common::root(), &["reinstall", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    let flag = help
        .split("\n  ")
        .find(|p| p.trim_start().starts_with("--check-timeout <SECS>"))
        .unwrap_or_else(|| panic!("no --check-timeout in:\n{help}"));
    assert!(flag.contains("[default: 600]"), "{flag}");
    assert_eq!(
        picaboot::ops::post_install::CHECK_DEADLINE,
        Duration::from_secs(600)
    );
}
