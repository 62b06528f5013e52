//! `test install` owns gigabytes of VM disks in /dev/shm: a SIGINT in its first minutes
//! (once the disks exist) removes them, and leaves no QEMU behind (issue 21). Needs this
//! machine's Debian mirror, as every `test install` does.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn sigint_removes_the_vm_disks_from_dev_shm() {
    let dir = common::scratch_profiles();
    let out = dir.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_picaboot"))
        .args(["test", "install", "alice", "--allow-unverified-udebs", "-o"])
        .arg(&out)
        .current_dir(dir.path())
        .env_remove("PICABOOT_PROFILES")
        .env("PICABOOT_CACHE", common::shared_cache())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    let disks: PathBuf = Path::new("/dev/shm").join(format!("picaboot-install-alice-{pid}"));
    let t = Instant::now();
    let log = || std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
    // The disks are made once the netboot tree is built (minutes with a cold cache).
    while !(disks.is_dir() && std::fs::read_dir(&disks).unwrap().count() > 0) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "test install ended ({status}) before its disks existed:\n{}",
                log()
            );
        }
        assert!(
            t.elapsed() < Duration::from_secs(900),
            "no disks in /dev/shm after 15 min:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A moment for the VM to start on them.
    std::thread::sleep(Duration::from_secs(5));
    let n = std::fs::read_dir(&disks).map(|r| r.count()).unwrap_or(0);
    let pid_i = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(pid_i, rustix::process::Signal::INT).unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("test install still runs 2 min after SIGINT:\n{}", log());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(130), "{}", log());
    assert!(log().contains("SIGINT: cleaning up"), "{}", log());
    assert!(
        !disks.exists(),
        "{} ({n} disk files before SIGINT) is still there:\n{}",
        disks.display(),
        log()
    );
    // QEMU dies with picaboot (parent-death signal), the installer VM as well as the KVM
    // probe that boots the run's kernel (found under the run's directory): give the kernel
    // a moment.
    let needle = dir.path().to_string_lossy().into_owned();
    let t = Instant::now();
    while !common::processes_mentioning(&needle).is_empty() && t.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(common::processes_mentioning(&needle), Vec::<String>::new());
}
