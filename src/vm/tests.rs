//! The rendered files of pica01's system, judged by real programs: shellcheck for the
//! scripts, `systemd-analyze verify` for the units (in a scratch root holding the scripts
//! they start), and the values of the system found where they belong.

use std::path::Path;
use std::process::Command;

use super::render::{files, BootInfo, ImageFile};
use super::system::VmSystem;

fn pica01() -> VmSystem {
    VmSystem::pica01_for_test(
        "http://deb.example/debian",
        vec!["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOv9 admin@example".into()],
    )
}

fn rendered() -> Vec<ImageFile> {
    let boot = BootInfo {
        root_uuid: super::image::uuid_of("k"),
        kernel: "vmlinuz-6.12.0-1-amd64".into(),
        initrd: "initrd.img-6.12.0-1-amd64".into(),
    };
    files(&pica01(), &boot).unwrap()
}

fn text<'a>(files: &'a [ImageFile], path: &str) -> &'a str {
    let f = files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("no {path}"));
    std::str::from_utf8(&f.bytes).unwrap()
}

/// Fails unless `program` runs; names the Debian package.
fn require(program: &str, package: &str) {
    let ok = Command::new(program).arg("--version").output().is_ok();
    assert!(
        ok,
        "`{program}` is missing: install the Debian package `{package}`"
    );
}

#[test]
fn network_files_hold_the_static_addresses_and_routes_and_nothing_dynamic() {
    let f = rendered();
    let s = pica01();
    for (i, n) in s.nics.iter().enumerate() {
        let t = text(
            &f,
            &format!("etc/systemd/network/{}-{}.network", 10 + i, n.name),
        );
        assert!(t.contains(&format!("MACAddress={}\n", n.mac)), "{t}");
        for line in ["DHCP=no\n", "IPv6AcceptRA=no\n", "LinkLocalAddressing=no\n"] {
            assert!(t.contains(line), "{line} missing in {t}");
        }
        if let Some(v4) = &n.ipv4 {
            assert!(t.contains(&format!("Address={}\n", v4.cidr)), "{t}");
            if let Some(g) = v4.gateway {
                assert!(
                    t.contains(&format!("Gateway={g}\nGatewayOnLink=yes")),
                    "{t}"
                );
            }
        }
        if let Some(v6) = &n.ipv6 {
            assert!(t.contains(&format!("Address={}\n", v6.cidr)), "{t}");
            let ll = v6.link_local.as_ref().unwrap();
            assert!(t.contains(&format!("Address={ll}\n")), "{t}");
            assert!(
                t.contains(&format!("Gateway={}", v6.gateway.unwrap())),
                "{t}"
            );
        }
    }
    let resolv = text(&f, "etc/resolv.conf");
    let got: Vec<&str> = resolv
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver "))
        .collect();
    assert_eq!(got, s.nameservers);
    let d = s.data_disk.as_ref().unwrap();
    let fstab = text(&f, "etc/fstab");
    assert!(
        fstab.contains(&format!("/dev/{}/{} {} ext4 ", d.vg, d.lv, d.mount)),
        "{fstab}"
    );
    assert_eq!(
        text(&f, "root/.ssh/authorized_keys"),
        format!("{}\n", s.ssh_keys[0])
    );
    let key = f
        .iter()
        .find(|f| f.path == "root/.ssh/authorized_keys")
        .unwrap();
    assert_eq!(key.mode, 0o600);
}

#[test]
fn rendering_is_deterministic_and_sorted() {
    let a = rendered();
    assert_eq!(a, rendered());
    let mut paths: Vec<&str> = a.iter().map(|f| f.path.as_str()).collect();
    let before = paths.clone();
    paths.sort();
    assert_eq!(paths, before);
}

#[test]
fn shellcheck_accepts_the_scripts() {
    require("shellcheck", "shellcheck");
    let dir = tempfile::tempdir().unwrap();
    for f in rendered()
        .iter()
        .filter(|f| f.path.starts_with("usr/local/sbin/"))
    {
        let p = dir.path().join(Path::new(&f.path).file_name().unwrap());
        std::fs::write(&p, &f.bytes).unwrap();
        let o = Command::new("shellcheck")
            .args(["-s", "sh"])
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "shellcheck {}:\n{}",
            f.path,
            String::from_utf8_lossy(&o.stdout)
        );
        let o = Command::new("sh").arg("-n").arg(&p).output().unwrap();
        assert!(o.status.success(), "sh -n {}", f.path);
    }
}

/// The units as the host's `systemd-analyze verify` sees them: each in a scratch directory, its
/// `ExecStart=` pointing at the rendered script written beside it (verify requires the program
/// to exist; the real path is /usr/local/sbin in the image).
#[test]
fn systemd_analyze_verifies_the_units() {
    require("systemd-analyze", "systemd");
    let dir = tempfile::tempdir().unwrap();
    let f = rendered();
    for (unit, script) in [
        ("picaboot-vm-setup.service", "picaboot-vm-setup"),
        ("picaboot-vm-selftest.service", "picaboot-vm-selftest"),
    ] {
        let s = dir.path().join(script);
        std::fs::write(&s, text(&f, &format!("usr/local/sbin/{script}"))).unwrap();
        std::fs::set_permissions(&s, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let body = text(&f, &format!("etc/systemd/system/{unit}"));
        let real = format!("ExecStart=/usr/local/sbin/{script}\n");
        assert!(body.contains(&real), "{body}");
        let u = dir.path().join(unit);
        std::fs::write(
            &u,
            body.replace(&real, &format!("ExecStart={}\n", s.display())),
        )
        .unwrap();
        let o = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&u)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        let own: Vec<&str> = err.lines().filter(|l| l.contains("picaboot")).collect();
        assert!(o.status.success() && own.is_empty(), "{unit}: {err}");
    }
}
