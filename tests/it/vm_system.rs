//! QEMU tier of issue 24's VM systems: `picaboot test vm pica01` builds pica01's system from
//! the verified Debian archive (this machine's mirror), boots it from its disk by SeaBIOS with
//! two NICs and two disks (the system disk 1 GiB larger than the image), and its self-test
//! passes (its root grown to the disk, static addresses and routes, nothing from
//! DHCP, vg01/data on /gluster-data), ssh answers with the declared key and refuses another;
//! a second run with nothing changed reuses the image.

use crate::common;

use common::require;

/// One guest at a time: the two QEMU tests of this module take turns (each guest is one
/// TCG vCPU; two at once would share the host's two cores with everything else and share the
/// image cache's first build).
pub(crate) static ONE_GUEST: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_guest() -> std::sync::MutexGuard<'static, ()> {
    ONE_GUEST.lock().unwrap_or_else(|e| e.into_inner())
}

fn run_test_vm(out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_picaboot"))
        .args(["test", "vm", "pica01", "-o"])
        .arg(out)
        .args(extra)
        .current_dir(common::root())
        .env("PATH", common::path_with_sbin())
        .output()
        .unwrap()
}

fn test_vm(out: &std::path::Path) -> String {
    let o = run_test_vm(out, &[]);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&o.stderr);
    eprintln!("{stdout}");
    assert!(
        o.status.success(),
        "test vm pica01 failed ({:?}):\n{stdout}\n{stderr}",
        o.status.code()
    );
    stdout
}

#[test]
fn pica01_boots_from_its_disk_passes_its_self_test_and_its_image_is_reused() {
    for (p, pkg) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("debootstrap", "debootstrap"),
        ("sfdisk", "fdisk"),
        ("qemu-img", "qemu-utils"),
        ("mkfs.ext4", "e2fsprogs"),
        ("ssh", "openssh-client"),
        ("ssh-keygen", "openssh-client"),
    ] {
        require(p, pkg);
    }
    let _guest = one_guest();
    let work = tempfile::tempdir().unwrap();
    let first = test_vm(&work.path().join("one"));
    // pica01's public NIC as its profile declares it: each address and both default routes.
    let project = picaboot::project::open(&common::root().join("profiles")).unwrap();
    let public = &project.loaded.profiles.vms["pica01"].nics[0];
    let addr = |a: String| format!("addr-{}-{}", public.name, a.replace('/', "_"));
    let mut declared = vec![
        addr(public.ipv4.unwrap().to_string()),
        addr(public.ipv6.unwrap().to_string()),
        addr(public.ipv6_link_local.unwrap().to_string()),
        format!("route-{}-4", public.name),
        format!("route-{}-6", public.name),
    ];
    for check in [
        "root-grown",
        "addresses-exact",
        "no-dhcp",
        "networkd-config",
        "data-mount",
        "data-lv",
        "authorized-keys",
        "ssh-declared-key",
        "ssh-other-key-refused",
    ] {
        declared.push(check.to_string());
    }
    for check in &declared {
        assert!(
            first
                .lines()
                .any(|l| l.starts_with(&format!("PASS {check} "))),
            "no PASS {check}:\n{first}"
        );
    }
    let junit = std::fs::read_to_string(work.path().join("one/pica01/report.xml")).unwrap();
    assert!(junit.contains("failures=\"0\""), "{junit}");
    let second = test_vm(&work.path().join("two"));
    assert!(second.contains("(reused from the cache"), "{second}");
}

/// A VM the profiles do not declare is bad input (exit 1), named, and nothing is built.
#[test]
fn an_unknown_vm_is_bad_input() {
    let work = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_picaboot"))
        .args(["test", "vm", "nosuch", "-o"])
        .arg(work.path())
        .current_dir(common::root())
        .env("PICABOOT_CACHE", work.path().join("cache"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no VM profile `nosuch` (vms/nosuch.toml); known: "),
        "{stderr}"
    );
    assert!(!work.path().join("cache").exists());
}

/// The checks can fail: booted without its data disk, pica01 says so (the data-disk checks
/// fail, the network ones still pass) and the command exits 3.
#[test]
fn without_its_data_disk_the_self_test_fails_and_names_it() {
    require("qemu-system-x86_64", "qemu-system-x86");
    require("debootstrap", "debootstrap");
    require("qemu-img", "qemu-utils");
    let _guest = one_guest();
    let work = tempfile::tempdir().unwrap();
    let o = run_test_vm(work.path(), &["--without-data-disk"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for fail in ["FAIL setup-unit ", "FAIL data-mount ", "FAIL data-lv "] {
        assert!(
            stdout.lines().any(|l| l.starts_with(fail)),
            "no {fail}:\n{stdout}"
        );
    }
    for pass in ["PASS addresses-exact ", "PASS ssh-declared-key "] {
        assert!(
            stdout.lines().any(|l| l.starts_with(pass)),
            "no {pass}:\n{stdout}"
        );
    }
}
