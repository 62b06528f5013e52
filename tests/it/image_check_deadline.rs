//! `image test`'s check is killed at its timeout (it was waited for forever: the timeout was
//! read only after `podman exec` returned), and its container is removed.
//!
//! podman here is a stand-in on PATH whose `exec` never returns, as `podman exec` does when
//! the check inside the container hangs (a `sleep` that never ends, a server that never
//! answers); every call is logged, so that the test sees the container's removal.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

#[test]
fn a_hanging_check_is_killed_at_its_timeout_and_the_container_removed() {
    // It changes PATH and starts a watchdog that exits: in a process of its own.
    if !crate::common::own_process(
        "image_check_deadline::a_hanging_check_is_killed_at_its_timeout_and_the_container_removed",
    ) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let bin = d.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = d.path().join("podman.log");
    let pidfile = d.path().join("exec.pid");
    std::fs::write(
        bin.join("podman"),
        format!(
            "#!/bin/sh\necho \"$*\" >> '{log}'\ncase \"$1\" in\nrun) echo 0123abcd ;;\n\
             exec) echo $$ > '{pid}'; exec sleep 1000 ;;\nlogs) echo 'the log of the container' ;;\n\
             esac\nexit 0\n",
            log = log.display(),
            pid = pidfile.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(bin.join("podman"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let images = d.path().join("images");
    std::fs::create_dir_all(images.join("hang")).unwrap();
    std::fs::write(
        images.join("hang/image.toml"),
        "description = \"a check that never returns\"\n[check]\nrun = \"sleep 1000\"\ntimeout = 2\n",
    )
    .unwrap();
    let all = picaboot::image::load(&images).unwrap();
    let img = &all.by_name["hang"];
    // In its own process: PATH is ours to change.
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    std::env::set_var("PATH", path);
    // A watchdog: the old code never returns.
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(60));
        eprintln!("the check was still waited for after 60 s");
        std::process::exit(1);
    });
    let t = Instant::now();
    let e =
        picaboot::image::runtest::run_check_ref(img, "localhost/hang", &mut |_| {}).unwrap_err();
    let took = t.elapsed();
    let msg = e.to_string();
    assert!(
        matches!(e, picaboot::image::runtest::CheckError::Failed { .. }),
        "{msg}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}: {msg}");
    assert!(msg.contains("did not pass within 2 s"), "{msg}");
    assert!(msg.contains("check of hang"), "{msg}");
    assert!(msg.contains("was killed"), "{msg}");
    // The hung `podman exec` is gone, and the container was removed after it ran.
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        rustix::process::test_kill_process(rustix::process::Pid::from_raw(pid).unwrap()).is_err(),
        "podman exec {pid} still runs"
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = calls.lines().collect();
    let run = lines
        .iter()
        .position(|l| l.starts_with("run -d --name picaboot-check-hang-"));
    let rm = lines
        .iter()
        .rposition(|l| l.starts_with("rm -f -t 1 picaboot-check-hang-"));
    assert!(matches!((run, rm), (Some(a), Some(b)) if a < b), "{calls}");
}
