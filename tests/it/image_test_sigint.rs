//! `image test`'s container is removed on Ctrl-C (issue 21: "the container survives
//! Ctrl-C"). The real `picaboot image test` with real podman runs a child of tx-debian whose
//! check hangs (`sleep 1000`, timeout 600 s); once the container runs and the check is inside
//! it, SIGINT goes to picaboot alone (`kill -INT PID`) and then, in a second run, to its whole
//! process group (as a terminal's Ctrl-C does); then at moments spread over `podman run`
//! (the container being created and started). Each time picaboot exits 130 within seconds,
//! says no check passed, `podman ps -a` no longer lists the container (nor a moment later)
//! and no podman process of it is left.
//!
//! Runs as root like tests/it/images.rs (debootstrap, podman with runc); the build uses this
//! machine's apt mirror and the shared test cache (minutes when cold, a second when warm).

use crate::common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Containers (any state) named exactly `name`.
fn containers_named(name: &str) -> String {
    let o = common::run_output(Command::new("podman").args([
        "ps",
        "-a",
        "--filter",
        &format!("name=^{name}$"),
        "--format",
        "{{.Names}} {{.Status}}",
    ]));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// When the SIGINT comes.
#[derive(Debug, Clone, Copy)]
enum When {
    /// Once the check runs inside the container.
    CheckRunning,
    /// This long after `image test` said it runs `podman run` (the container being created
    /// and started).
    AfterRun(Duration),
}

/// Starts `image test hang`, sends SIGINT at `when` (to the process group when `group`), and
/// checks what is left.
fn interrupt(images: &Path, out: &Path, group: bool, when: When) {
    let log_path = out.with_extension("stderr.log");
    let stdout_path = out.with_extension("stdout.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_picaboot"));
    cmd.args(["image", "test", "hang", "--host-mirror", "--images"])
        .arg(images)
        .arg("-o")
        .arg(out)
        .current_dir(common::root())
        .env_remove("PICABOOT_PROFILES")
        .env("PICABOOT_CACHE", common::shared_cache())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&log_path).unwrap());
    if group {
        // Its own process group, as a shell gives a foreground job.
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    let name = format!("picaboot-check-hang-{pid}");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let exec = format!("exec {name} ");
    let t = Instant::now();
    let reached = || match when {
        When::CheckRunning => !common::processes_mentioning(&exec).is_empty(),
        When::AfterRun(_) => log().contains("[hang] podman run "),
    };
    // Built (minutes when the cache is cold), then the moment asked for.
    while !reached() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "image test ended ({status}) before its check ran:\n{}",
                log()
            );
        }
        assert!(
            t.elapsed() < Duration::from_secs(1200),
            "the check did not start within 20 min:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    match when {
        When::CheckRunning => {
            let listed = containers_named(&name);
            assert!(listed.contains(&name), "podman ps -a: {listed:?}");
        }
        When::AfterRun(d) => std::thread::sleep(d),
    }
    let leader = rustix::process::Pid::from_raw(pid as i32).unwrap();
    if group {
        rustix::process::kill_process_group(leader, rustix::process::Signal::INT).unwrap();
    } else {
        rustix::process::kill_process(leader, rustix::process::Signal::INT).unwrap();
    }
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("image test still runs 60 s after SIGINT:\n{}", log());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = t.elapsed();
    eprintln!("SIGINT (group: {group}, {when:?}): exit after {took:?}");
    assert_eq!(status.code(), Some(130), "{when:?}: {}", log());
    // The check was killed, it did not pass: nothing is reported as if it had.
    let stdout = std::fs::read_to_string(&stdout_path).unwrap();
    assert!(!stdout.contains("check passed"), "{when:?}: {stdout}");
    assert!(log().contains("SIGINT: cleaning up"), "{}", log());
    // `podman rm -f -t 1`: a second of grace for the container, then its removal.
    assert!(took < Duration::from_secs(30), "{took:?}:\n{}", log());
    assert_eq!(
        containers_named(&name),
        "",
        "{when:?}: the container survived:\n{}",
        log()
    );
    // A container whose start was interrupted can appear late: look again after a moment.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        containers_named(&name),
        "",
        "{when:?}: the container appeared after the exit:\n{}",
        log()
    );
    let left = common::processes_mentioning(&name);
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn sigint_removes_the_container_of_a_hanging_check() {
    for (t, p) in [
        ("podman", "podman"),
        ("runc", "runc"),
        ("debootstrap", "debootstrap"),
        ("unshare", "util-linux"),
    ] {
        common::require(t, p);
    }
    let d = tempfile::tempdir().unwrap();
    let images = d.path().join("images");
    std::fs::create_dir_all(images.join("hang")).unwrap();
    common::copy_tree(
        &common::root().join("images/tx-debian"),
        &images.join("tx-debian"),
    );
    std::fs::write(
        images.join("hang/image.toml"),
        "description = \"its check hangs\"\nparent = \"tx-debian\"\n[check]\nrun = \"sleep 1000\"\ntimeout = 600\n",
    )
    .unwrap();
    let out = d.path().join("out");
    interrupt(&images, &out, false, When::CheckRunning);
    interrupt(&images, &out, true, When::CheckRunning);
    // While `podman run` creates and starts the container (about two seconds here): the
    // programs still running are stopped before the container is removed, and the removal is
    // repeated while podman still lists it. Before, a container started after its removal
    // survived about one run in ten of these.
    for tenths in (0..=24).step_by(3) {
        interrupt(
            &images,
            &out,
            false,
            When::AfterRun(Duration::from_millis(tenths * 100)),
        );
    }
}
