//! QEMU tier: the rendered Proxmox first-boot unit (`picaboot-proxmox.service` running
//! `/usr/local/sbin/picaboot-proxmox`) runs for real under systemd in a Debian guest, against a
//! local apt repository this test builds and signs with a key of its own.
//!
//! The Proxmox repository cannot be reached from here, so the repository holds stand-ins under
//! the Proxmox names: `proxmox-ve` and `proxmox-default-kernel` made with `equivs`, and a
//! "Proxmox kernel" that is Debian bookworm's real kernel package (downloaded with apt, so
//! verified by apt) renamed `proxmox-kernel-…-standin`: a kernel that boots, has its own
//! modules and runs the usual kernel hooks (initramfs, symlinks). The repository is served in
//! the guest by busybox httpd from a read-only disk, at the URLs the test profile names; the
//! guest has no network. postfix, open-iscsi and chrony are Debian's, in the guest image.
//!
//! The test plays the boot loader: the guest boots with `-kernel`, Debian's kernel until the
//! stand-in kernel is installed, then the stand-in's (as GRUB's first entry would be on a real
//! node, where the Proxmox kernel's version sorts above Debian's; bookworm's 6.1 does not, so
//! here the choice is the test's). One boot runs Debian's kernel after the unit's reboot, to see
//! step 5 refuse to remove the running kernel.
//!
//! Boots, each ended by the guest (reboot or power-off) or by the test pulling the plug:
//! 1. the keyring served is not the pinned one: the unit refuses it, installs nothing, the box
//!    boots on (the check driver runs);
//! 2. good keyring: power cut while dpkg unpacks the kernel (step 2);
//! 3. the unit resumes, finishes step 2 and reboots (step 3);
//! 4. Debian's kernel: step 4 installs proxmox-ve, step 5 refuses (running kernel is Debian's);
//! 5. the stand-in kernel: power cut while apt removes Debian's kernel (step 5);
//! 6. the unit resumes and finishes; a second run of the script changes no package;
//! 7. one more boot: the unit does not run again, the box boots.
//!
//! About ten minutes under TCG (measured: 599 s, the guest build included);
//! `scripts/test-proxmox` runs it and shows each boot's figures.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::require;
use picaboot::qemu::guest::{self, GuestRecipe};
use picaboot::qemu::vm::{Bus, Disk, Outcome, VmSpec};
use picaboot::qemu::Accel;

const PORT: u16 = 8080;

/// The guest's check driver (harness, not under test): runs after the unit, prints `PBX` lines
/// with the state the test checks, and powers off.
const DRIVER: &str = r#"#!/bin/sh
p() { echo "PBX $*"; }
p "kernel $(uname -r)"
p "unit $(systemctl show -p ActiveState --value picaboot-proxmox.service) $(systemctl show -p Result --value picaboot-proxmox.service) condition=$(systemctl show -p ConditionResult --value picaboot-proxmox.service)"
dpkg-query -W -f '${Package} ${db:Status-Status}\n' 'linux-image-*' 'proxmox-*' os-prober 2>/dev/null | while read -r pkg st; do p "pkg $pkg $st"; done
k=/usr/share/keyrings/proxmox-archive-keyring.gpg
if [ -e "$k" ]; then p "keyring $(sha256sum "$k" | cut -d' ' -f1)"; else p "keyring absent"; fi
p "state $(ls /var/lib/picaboot/proxmox 2>/dev/null | sort | tr '\n' ' ')"
p "grub $(grep -o 'vmlinuz-[^ ]*' /boot/grub/grub.cfg 2>/dev/null | sort -u | tr '\n' ' ')"
p "dpkg-audit $(dpkg --audit 2>&1 | grep -c .)"
p "journal-steps $(journalctl -b -u picaboot-proxmox.service -o cat 2>/dev/null | grep -c '^picaboot-proxmox: step')"
if [ -e /var/lib/picaboot/proxmox/done ] && [ ! -e /var/lib/pb-second-run ]; then
	touch /var/lib/pb-second-run
	before=$(dpkg-query -W -f '${Package}=${Version}=${db:Status-Status}\n' | sha256sum)
	/usr/local/sbin/picaboot-proxmox > /tmp/second.log 2>&1
	rc=$?
	after=$(dpkg-query -W -f '${Package}=${Version}=${db:Status-Status}\n' | sha256sum)
	sed 's/^/PBX second: /' /tmp/second.log
	if [ "$before" = "$after" ]; then same=yes; else same=no; fi
	p "second-run rc=$rc packages-unchanged=$same"
fi
p "end"
sync
systemctl poweroff
"#;

const HTTPD_UNIT: &str = "[Unit]
Description=test: the stand-in Proxmox repository on 127.0.0.1
RequiresMountsFor=/repo
Before=picaboot-proxmox.service network-online.target

[Service]
Type=forking
ExecStart=/bin/busybox httpd -p 127.0.0.1:8080 -h /repo/www

[Install]
WantedBy=multi-user.target
";

const DRIVER_UNIT: &str = "[Unit]
Description=test: report the state after picaboot-proxmox, power off
After=picaboot-proxmox.service pb-repo-httpd.service
RequiresMountsFor=/repo

[Service]
Type=oneshot
ExecStart=/bin/sh /repo/driver
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
";

fn run(c: &mut Command) -> String {
    common::run_ok(c)
}

/// `gpg` in the GnuPG home `home`, unattended, keys without a passphrase.
fn gpg(home: &Path) -> Command {
    let mut c = common::cmd("gpg");
    c.env("GNUPGHOME", home).args([
        "--batch",
        "--quiet",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
    ]);
    c
}

/// An ephemeral signing key in its own GnuPG home; returns (home, binary public keyring).
fn make_key(dir: &Path, name: &str) -> (PathBuf, Vec<u8>) {
    let home = dir.join(format!("gnupg-{name}"));
    std::fs::create_dir_all(&home).unwrap();
    let gpg = |args: &[&str]| {
        let mut c = gpg(&home);
        c.args(args);
        c
    };
    run(&mut gpg(&[
        "--quick-gen-key",
        &format!("picaboot test {name} <{name}@test.invalid>"),
        "ed25519",
        "sign",
        "never",
    ]));
    let out = common::run_output(&mut gpg(&["--export"]));
    assert!(!out.stdout.is_empty(), "gpg exported no key");
    (home, out.stdout)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The Debian kernel package `linux-image-amd64` depends on in this machine's apt (bookworm
/// here), downloaded by apt into `cache`; returns (path, kernel version).
fn host_kernel_deb(cache: &Path) -> (PathBuf, String) {
    let deps = run(common::cmd("apt-cache").args(["depends", "linux-image-amd64"]));
    let pkg = deps
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-") && p.ends_with("-amd64"))
        .unwrap_or_else(|| {
            panic!("no kernel package in `apt-cache depends linux-image-amd64`:\n{deps}")
        })
        .to_string();
    let kver = pkg.trim_start_matches("linux-image-").to_string();
    std::fs::create_dir_all(cache).unwrap();
    let found = |dir: &Path| {
        std::fs::read_dir(dir).ok().and_then(|rd| {
            rd.flatten().map(|e| e.path()).find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{pkg}_")))
            })
        })
    };
    if let Some(p) = found(cache) {
        return (p, kver);
    }
    let mut c = common::cmd("apt-get");
    c.args(["download", "-q", &pkg]).current_dir(cache);
    run(&mut c);
    (
        found(cache).expect("apt-get download left the package"),
        kver,
    )
}

/// Builds the signed stand-in repository under `www/pve` and the keyring at `www/keyring.gpg`.
fn build_repo(work: &Path, www: &Path, kernel_deb: &Path, kver: &str, gnupg: &Path) -> String {
    let standin = format!("proxmox-kernel-{kver}-standin");
    let pool = www.join("pve/pool");
    std::fs::create_dir_all(&pool).unwrap();
    // The kernel: Debian's package, renamed.
    let raw = work.join("kernel-raw");
    let _ = std::fs::remove_dir_all(&raw);
    run(common::cmd("dpkg-deb").arg("-R").arg(kernel_deb).arg(&raw));
    let control = raw.join("DEBIAN/control");
    let text = std::fs::read_to_string(&control).unwrap();
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("Package: ") {
                format!("Package: {standin}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    std::fs::write(&control, text).unwrap();
    run(common::cmd("dpkg-deb")
        .args(["-Zgzip", "-z1", "-b"])
        .arg(&raw)
        .arg(pool.join(format!("{standin}_1_amd64.deb"))));
    std::fs::remove_dir_all(&raw).unwrap();
    // The metapackages, with equivs.
    let eq = work.join("equivs");
    std::fs::create_dir_all(&eq).unwrap();
    for (name, depends) in [
        ("proxmox-default-kernel", standin.as_str()),
        ("proxmox-ve", "proxmox-default-kernel"),
    ] {
        let ctl = eq.join(format!("{name}.ctl"));
        std::fs::write(
            &ctl,
            format!(
                "Section: misc\nPriority: optional\nStandards-Version: 4.6.2\n\
                 Package: {name}\nVersion: 9.0-standin1\nMaintainer: picaboot tests <t@test.invalid>\n\
                 Depends: {depends}\nArchitecture: all\n\
                 Description: stand-in for {name} (picaboot tests)\n Made by tests/it/vm_proxmox.rs.\n"
            ),
        )
        .unwrap();
        let mut c = common::cmd("equivs-build");
        c.arg(&ctl).current_dir(&eq);
        run(&mut c);
    }
    for e in std::fs::read_dir(&eq).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "deb") {
            std::fs::rename(e.path(), pool.join(e.file_name())).unwrap();
        }
    }
    // Index and signed Release, as apt reads them.
    let bin = www.join("pve/dists/trixie/pve-no-subscription/binary-amd64");
    std::fs::create_dir_all(&bin).unwrap();
    let mut c = common::cmd("apt-ftparchive");
    c.args(["packages", "pool"]).current_dir(www.join("pve"));
    let packages = run(&mut c);
    std::fs::write(bin.join("Packages"), packages).unwrap();
    let dists = www.join("pve/dists/trixie");
    let mut c = common::cmd("apt-ftparchive");
    c.args([
        "-o",
        "APT::FTPArchive::Release::Suite=trixie",
        "-o",
        "APT::FTPArchive::Release::Codename=trixie",
        "-o",
        "APT::FTPArchive::Release::Components=pve-no-subscription",
        "-o",
        "APT::FTPArchive::Release::Architectures=amd64",
        "release",
        ".",
    ])
    .current_dir(&dists);
    let release = run(&mut c);
    std::fs::write(dists.join("Release"), release).unwrap();
    for (args, out) in [
        (vec!["--clearsign", "-o"], "InRelease"),
        (vec!["-abs", "-o"], "Release.gpg"),
    ] {
        let mut c = gpg(gnupg);
        c.args(&args)
            .arg(dists.join(out))
            .arg(dists.join("Release"));
        run(&mut c);
    }
    standin
}

/// Writes files into an ext4 image with debugfs (no mount): `(guest path, content, mode)`;
/// `links` are (link, target) symlinks; `remove` are paths deleted first.
fn put_files(
    image: &Path,
    work: &Path,
    files: &[(&str, Vec<u8>, u32)],
    links: &[(&str, &str)],
    dirs: &[&str],
    remove: &[&str],
) {
    let staging = work.join("debugfs-files");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).unwrap();
    let mut cmds = String::new();
    for r in remove {
        cmds.push_str(&format!("rm {r}\n"));
    }
    for d in dirs {
        cmds.push_str(&format!("mkdir {d}\n"));
    }
    for (i, (path, content, mode)) in files.iter().enumerate() {
        let local = staging.join(i.to_string());
        std::fs::write(&local, content).unwrap();
        cmds.push_str(&format!("rm {path}\nwrite {} {path}\nsif {path} mode 0{:o}\nsif {path} uid 0\nsif {path} gid 0\n", local.display(), 0o100000 | mode));
    }
    for (link, target) in links {
        cmds.push_str(&format!("rm {link}\nsymlink {link} {target}\n"));
    }
    let script = work.join("debugfs.cmds");
    std::fs::write(&script, cmds).unwrap();
    run(common::cmd("debugfs")
        .args(["-w", "-f"])
        .arg(&script)
        .arg(image));
    for (path, content, _) in files {
        let got = common::run_output(
            common::cmd("debugfs")
                .args(["-R", &format!("cat {path}")])
                .arg(image),
        );
        assert_eq!(&got.stdout, content, "{path} written into the guest image");
    }
}

/// Copies a file out of the ext4 image.
fn get_file(image: &Path, path: &str, to: &Path) {
    let _ = std::fs::remove_file(to);
    run(common::cmd("debugfs")
        .args(["-R", &format!("dump {path} {}", to.display())])
        .arg(image));
    assert!(
        to.metadata().is_ok_and(|m| m.len() > 0),
        "{path} is not in the guest image"
    );
}

/// What one boot showed.
struct Boot {
    n: usize,
    console: String,
    seconds: f64,
}

impl Boot {
    /// Values of `PBX KEY …` lines.
    fn pbx(&self, key: &str) -> Vec<String> {
        self.console
            .lines()
            .filter_map(|l| {
                l.trim_end_matches('\r')
                    .split_once("PBX ")
                    .map(|(_, rest)| rest)
            })
            .filter_map(|rest| {
                let v = rest.strip_prefix(key)?;
                (v.is_empty() || v.starts_with(' ')).then(|| v.trim().to_string())
            })
            .collect()
    }

    fn one(&self, key: &str) -> String {
        let v = self.pbx(key);
        assert_eq!(
            v.len(),
            1,
            "boot {}: one `PBX {key}` line, got {v:?}\n{}",
            self.n,
            self.tail()
        );
        v[0].clone()
    }

    fn pkg(&self, name: &str) -> String {
        self.pbx("pkg")
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_string))
            .unwrap_or_else(|| "not-installed".into())
    }

    fn has(&self, text: &str) -> bool {
        self.console.contains(text)
    }

    fn expect(&self, text: &str) {
        assert!(
            self.has(text),
            "boot {}: `{text}` not on the console\n{}",
            self.n,
            self.tail()
        );
    }

    fn tail(&self) -> String {
        let lines: Vec<&str> = self.console.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

struct Box_ {
    work: PathBuf,
    root: PathBuf,
    repo_img: PathBuf,
    accel: Accel,
    boots: usize,
}

impl Box_ {
    /// Boots `kernel`/`initrd`; pulls the plug `cut_after` after `cut_at` shows on the console.
    fn boot(&mut self, kernel: &Path, initrd: &Path, cut_at: Option<(&str, Duration)>) -> Boot {
        self.boots += 1;
        let n = self.boots;
        let console = self.work.join(format!("console-{n}.log"));
        let disk = |path: PathBuf, read_only: bool, serial: &str| Disk {
            path,
            bus: Bus::Virtio,
            serial: Some(serial.into()),
            read_only,
            snapshot: false,
            model: None,
            bootindex: None,
        };
        let spec = VmSpec {
            name: format!("proxmox-{n}"),
            accel: self.accel,
            cpus: 1,
            memory_mib: 2048,
            kernel: Some(kernel.to_path_buf()),
            initrd: Some(initrd.to_path_buf()),
            append: "console=ttyS0 root=/dev/vda rw panic=-1 loglevel=4".into(),
            disks: vec![
                disk(self.root.clone(), false, "ROOT"),
                disk(self.repo_img.clone(), true, "REPO"),
            ],
            console: console.clone(),
            reboot: false,
            extra_args: Vec::new(),
        };
        let limit = Duration::from_secs(1500);
        let start = Instant::now();
        let mut vm = spec.start().expect("start qemu");
        let mut cut = false;
        let outcome = match cut_at {
            Some((marker, after)) => {
                let o = vm.wait_for(marker, limit, |_| {});
                if o == Outcome::Marker {
                    std::thread::sleep(after);
                    assert!(
                        vm.exited().is_none(),
                        "boot {n}: the guest ended before the power cut"
                    );
                    vm.kill();
                    cut = true;
                }
                o
            }
            None => vm.wait_for("\u{0}never\u{0}", limit, |_| {}),
        };
        let boot = Boot {
            n,
            console: vm.console(),
            seconds: start.elapsed().as_secs_f64(),
        };
        if let Outcome::TimedOut = outcome {
            panic!(
                "boot {n}: no end after {} s\n{}",
                limit.as_secs(),
                boot.tail()
            );
        }
        if cut_at.is_some() {
            assert!(
                cut,
                "boot {n}: {:?} before the power cut point\n{}",
                outcome,
                boot.tail()
            );
        }
        eprintln!(
            "boot {n}: {:.0} s, {}",
            boot.seconds,
            if cut {
                "power cut"
            } else {
                "ended by the guest"
            }
        );
        boot
    }
}

#[test]
#[ignore = "a 10-minute guest run outside CI's budget: scripts/test-proxmox (README)"]
fn the_proxmox_first_boot_unit_installs_resumes_and_refuses_a_bad_keyring_in_a_guest() {
    for (p, pkg) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("debootstrap", "debootstrap"),
        ("mkfs.ext4", "e2fsprogs"),
        ("debugfs", "e2fsprogs"),
        ("equivs-build", "equivs"),
        ("apt-ftparchive", "apt-utils"),
        ("gpg", "gnupg"),
        ("dpkg-deb", "dpkg"),
    ] {
        require(p, pkg);
    }
    let keep = tempfile::tempdir().unwrap();
    let work = keep.path().to_path_buf();

    // The stand-in repository's key, and another key whose keyring must be refused.
    let (gnupg, keyring) = make_key(&work, "repo");
    let (_, other_keyring) = make_key(&work, "other");
    let pin = sha256_hex(&keyring);
    let other_sha = sha256_hex(&other_keyring);

    // The host's files, rendered from the shipped profiles with the repository moved to the
    // guest's loopback and the pin set to this run's key.
    let scratch = common::scratch_profiles();
    let profiles = scratch.path().join("profiles");
    let cluster = profiles.join("clusters/picasoft.toml");
    common::edit(
        &cluster,
        "http://download.proxmox.com/debian/pve",
        &format!("http://127.0.0.1:{PORT}/pve"),
    );
    common::edit(
        &cluster,
        "https://enterprise.proxmox.com/debian/proxmox-archive-keyring-trixie.gpg",
        &format!("http://127.0.0.1:{PORT}/keyring.gpg"),
    );
    common::edit(
        &cluster,
        "136673be77aba35dcce385b28737689ad64fd785a797e57897589aed08db6e45",
        &pin,
    );
    let (_render_dir, out) = common::render_all(&profiles);
    let rootfs = out.join("alice/rootfs");
    let rendered =
        |p: &str| std::fs::read(rootfs.join(p)).unwrap_or_else(|e| panic!("rendered {p}: {e}"));
    let project = picaboot::project::open(&profiles).unwrap();
    let suite = project.loaded.profiles.hosts["alice"].install.suite.clone();

    // The guest: Debian with systemd, and what the unit installs from Debian already there.
    let recipe = GuestRecipe {
        suite,
        mirror: common::mirror(),
        packages: [
            "systemd-sysv",
            "busybox",
            "postfix",
            "open-iscsi",
            "chrony",
            "os-prober",
            "grub2-common",
        ]
        .map(String::from)
        .to_vec(),
        image_mib: 4096,
    };
    let g = guest::build(&recipe, &guest::cache_root()).expect("build the test guest");
    let root = work.join("root.img");
    run(common::cmd("cp")
        .arg("--sparse=always")
        .arg(&g.root)
        .arg(&root));
    let fstab = b"/dev/vda / ext4 rw 0 1\nLABEL=scenario /repo ext4 ro 0 0\n".to_vec();
    put_files(
        &root,
        &work,
        &[
            (
                "/usr/local/sbin/picaboot-proxmox",
                rendered("usr/local/sbin/picaboot-proxmox"),
                0o755,
            ),
            (
                "/etc/systemd/system/picaboot-proxmox.service",
                rendered("etc/systemd/system/picaboot-proxmox.service"),
                0o644,
            ),
            (
                "/etc/apt/sources.list.d/proxmox.sources",
                rendered("etc/apt/sources.list.d/proxmox.sources"),
                0o644,
            ),
            ("/etc/fstab", fstab, 0o644),
            ("/etc/hostname", b"alice\n".to_vec(), 0o644),
            // Not a first boot (no systemd-firstboot questions on the console).
            (
                "/etc/machine-id",
                b"5069636162306f742070726f786d6f78\n".to_vec(),
                0o444,
            ),
            (
                "/etc/systemd/system/pb-repo-httpd.service",
                HTTPD_UNIT.as_bytes().to_vec(),
                0o644,
            ),
            (
                "/etc/systemd/system/pb-test-driver.service",
                DRIVER_UNIT.as_bytes().to_vec(),
                0o644,
            ),
            // Guest speed only: an initramfs for this VM's devices, not every driver.
            (
                "/etc/initramfs-tools/conf.d/pb-test",
                b"MODULES=dep\n".to_vec(),
                0o644,
            ),
        ],
        &[
            (
                "/etc/systemd/system/multi-user.target.wants/picaboot-proxmox.service",
                "/etc/systemd/system/picaboot-proxmox.service",
            ),
            (
                "/etc/systemd/system/multi-user.target.wants/pb-repo-httpd.service",
                "/etc/systemd/system/pb-repo-httpd.service",
            ),
            (
                "/etc/systemd/system/multi-user.target.wants/pb-test-driver.service",
                "/etc/systemd/system/pb-test-driver.service",
            ),
        ],
        &["/repo", "/boot/grub"],
        // The guest has no network: only the stand-in repository is an apt source.
        &["/etc/apt/sources.list"],
    );

    // The repository disk, first with the wrong keyring at the pinned URL.
    let (kernel_deb, kver) = host_kernel_deb(&common::shared_cache().join("proxmox-standin"));
    let www = work.join("repo/www");
    let standin = build_repo(&work, &www, &kernel_deb, &kver, &gnupg);
    std::fs::write(work.join("repo/driver"), DRIVER).unwrap();
    let repo_img = work.join("repo.img");
    let repo_disk = |keyring: &[u8]| {
        std::fs::write(www.join("keyring.gpg"), keyring).unwrap();
        guest::scenario_disk(&work.join("repo"), &repo_img).unwrap();
    };
    repo_disk(&other_keyring);

    let (accel, why) = Accel::detect(&g.kernel);
    eprintln!("accelerator: {why}; stand-in kernel {standin} ({kver})");
    let mut bx = Box_ {
        work: work.clone(),
        root: root.clone(),
        repo_img: repo_img.clone(),
        accel,
        boots: 0,
    };
    let debian = (g.kernel.clone(), g.initrd.clone());
    let standin_kernel = || {
        let k = work.join("standin-vmlinuz");
        let i = work.join("standin-initrd");
        get_file(&root, &format!("/boot/vmlinuz-{kver}"), &k);
        get_file(&root, &format!("/boot/initrd.img-{kver}"), &i);
        (k, i)
    };

    // 1. A keyring that is not the pinned one: refused, nothing installed, the box boots on.
    let b = bx.boot(&debian.0, &debian.1, None);
    b.expect(&format!(
        "REFUSED: the keyring from http://127.0.0.1:{PORT}/keyring.gpg has SHA-256 {other_sha}, the profile pins {pin}; nothing was installed"
    ));
    assert_eq!(
        b.one("unit"),
        "failed exit-code condition=yes",
        "{}",
        b.tail()
    );
    assert_eq!(b.one("keyring"), "absent");
    assert_eq!(b.pkg("proxmox-ve"), "not-installed");
    assert_eq!(b.pkg(&standin), "not-installed");
    assert_eq!(b.one("end"), "", "the box booted to the end");
    let debian_kernel = b.one("kernel");
    let debian_pkg = format!("linux-image-{debian_kernel}");
    assert_eq!(b.pkg(&debian_pkg), "installed", "{}", b.tail());

    // 2. The pinned keyring; the power goes while dpkg unpacks the kernel.
    repo_disk(&keyring);
    let b = bx.boot(
        &debian.0,
        &debian.1,
        Some((&format!("Unpacking {standin}"), Duration::from_secs(4))),
    );
    b.expect(&format!("step 1/6 keyring: installed /usr/share/keyrings/proxmox-archive-keyring.gpg (SHA-256 {pin})"));
    b.expect("step 2/6 kernel: installing proxmox-default-kernel");

    // 3. The unit resumes the kernel's install, then reboots once.
    let b = bx.boot(&debian.0, &debian.1, None);
    b.expect("step 1/6 keyring: /usr/share/keyrings/proxmox-archive-keyring.gpg matches the pinned SHA-256");
    b.expect("step 2/6 kernel: installing proxmox-default-kernel");
    b.expect(&format!("Setting up {standin}"));
    b.expect("step 3/6 reboot: rebooting into the Proxmox kernel; this unit resumes after it");
    assert!(
        b.pbx("end").is_empty(),
        "boot 3 rebooted before the driver ran"
    );

    // 4. Debian's kernel again: proxmox-ve goes in, the running kernel stays.
    let b = bx.boot(&debian.0, &debian.1, None);
    b.expect(&format!(
        "step 3/6 reboot: this boot runs kernel {debian_kernel}"
    ));
    b.expect("step 4/6 proxmox-ve: installing proxmox-ve postfix open-iscsi chrony");
    b.expect(&format!("step 5/6 debian-kernel: NOT removed: the running kernel {debian_kernel} is Debian's ({debian_pkg})"));
    assert_eq!(b.one("unit"), "failed exit-code condition=yes");
    assert_eq!(b.pkg("proxmox-ve"), "installed");
    assert_eq!(b.pkg(&debian_pkg), "installed");
    assert_eq!(b.one("end"), "");

    // 5. The stand-in kernel; the power goes while apt removes Debian's kernel.
    let (k, i) = standin_kernel();
    let b = bx.boot(
        &k,
        &i,
        Some((&format!("Removing {debian_pkg}"), Duration::from_secs(3))),
    );
    b.expect("step 5/6 debian-kernel: removing");

    // 6. The unit resumes and finishes; a second run changes nothing.
    let b = bx.boot(&k, &i, None);
    b.expect("step 4/6 proxmox-ve: installed");
    b.expect("step 6/6 grub: update-grub");
    b.expect("done: Proxmox VE is installed");
    assert_eq!(b.one("kernel"), kver);
    assert_eq!(
        b.one("unit"),
        "active success condition=yes",
        "{}",
        b.tail()
    );
    for p in [&debian_pkg, "linux-image-amd64", "os-prober"] {
        let st = b.pkg(p);
        assert!(
            st == "not-installed" || st == "config-files",
            "{p}: {st}\n{}",
            b.tail()
        );
    }
    for p in ["proxmox-ve", "proxmox-default-kernel", &standin] {
        assert_eq!(b.pkg(p), "installed", "{p}");
    }
    assert_eq!(b.one("keyring"), pin);
    assert_eq!(
        b.one("grub"),
        format!("vmlinuz-{kver}"),
        "GRUB's menu holds the Proxmox kernel only"
    );
    assert_eq!(b.one("dpkg-audit"), "0");
    let steps: usize = b.one("journal-steps").parse().unwrap();
    assert!(
        steps >= 6,
        "every step of this boot in the journal: {steps}"
    );
    assert_eq!(
        b.one("second-run"),
        "rc=0 packages-unchanged=yes",
        "{}",
        b.tail()
    );
    let second = b.pbx("second:");
    assert!(
        second
            .iter()
            .all(|l| !l.contains(": installing") && !l.contains(": removing")),
        "the second run installed or removed something: {second:?}"
    );

    // 7. Done is done: the unit does not run again, and the box boots.
    let b = bx.boot(&k, &i, None);
    assert_eq!(
        b.one("unit"),
        "inactive success condition=no",
        "{}",
        b.tail()
    );
    assert_eq!(b.one("end"), "");
}
