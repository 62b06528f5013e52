//! `netboot` end to end against this machine's Debian mirror (shared warm cache): the
//! initrd starts with the installer's original initrd byte for byte (checked against
//! `dpkg-deb -x` of the verified package), the appended archives hold exactly the rendered
//! host files (checked with GNU cpio) and the supplement, the output is deterministic and a
//! failure publishes nothing.

use crate::common;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use picaboot::archive::cpio;
use picaboot::debian::{Cache, Client, ClientOptions, DEFAULT_KEYRING};
use picaboot::netboot::{self, NetbootOptions, Summary};
use picaboot::output::{self, Tree};
use picaboot::profile::Frontend;
use picaboot::render::{render_hosts, RenderOptions};

const HOST: &str = "alice";

fn profiles() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles")
}

fn client(mirror: &str) -> Client {
    Client::new(ClientOptions {
        mirror: mirror.to_string(),
        keyring: PathBuf::from(DEFAULT_KEYRING),
        insecure: false,
        cache_dir: common::shared_cache(),
    })
}

fn tree() -> Tree {
    let project = picaboot::project::open(&profiles()).unwrap();
    let mut r = render_hosts(&project, &[HOST.to_string()], RenderOptions::default()).unwrap();
    r.trees.remove(HOST).unwrap()
}

fn build(
    out: &Path,
    frontend: Frontend,
    supplement: bool,
) -> Result<Summary, netboot::NetbootError> {
    common::sbin_path();
    common::require("gpgv", "gpgv");
    common::require("depmod", "kmod");
    let project = picaboot::project::open(&profiles()).unwrap();
    let host = &project.loaded.profiles.hosts[HOST];
    let target = netboot::target_dir(out, HOST);
    let (staged, summary) = netboot::stage(
        &client(&common::mirror()),
        host,
        &tree(),
        &target,
        &NetbootOptions {
            frontend: Some(frontend),
            supplement,
            base_url: "http://10.0.2.2:8080".into(),
            keyring_append: None,
            report_to: None,
        },
    )?;
    output::publish(vec![staged]).unwrap();
    Ok(summary)
}

/// One text-frontend build shared by the tests of this file.
fn built() -> &'static (tempfile::TempDir, Summary) {
    static B: OnceLock<(tempfile::TempDir, Summary)> = OnceLock::new();
    B.get_or_init(|| {
        let out = tempfile::tempdir().unwrap();
        let s = build(out.path(), Frontend::Text, true).unwrap();
        (out, s)
    })
}

fn netboot_dir() -> PathBuf {
    netboot::target_dir(built().0.path(), HOST)
}

/// Splits a stream of concatenated gzip members.
fn gzip_members(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let mut d = flate2::bufread::GzDecoder::new(data);
        let mut v = Vec::new();
        d.read_to_end(&mut v).unwrap();
        out.push(v);
        data = d.into_inner();
    }
    out
}

#[test]
fn initrd_starts_with_the_original_installer_initrd() {
    common::require("dpkg-deb", "dpkg");
    let (_, s) = built();
    let initrd = std::fs::read(netboot_dir().join("initrd.gz")).unwrap();
    // Oracle: the initrd as dpkg-deb extracts it from the verified package.
    let cache = Cache::new(common::shared_cache());
    let rec: picaboot::netboot::installer::Installer = cache
        .record(&format!("installer-{}", installer_deb_sha()))
        .expect("installer record");
    let deb = cache
        .get(&rec.deb_sha256)
        .unwrap()
        .expect("installer .deb cached");
    let x = tempfile::tempdir().unwrap();
    picaboot::exec::run(
        "extract",
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(x.path()),
    )
    .unwrap();
    let original = std::fs::read(x.path().join(picaboot::netboot::installer::member_path(
        13,
        Frontend::Text,
        "initrd.gz",
    )))
    .unwrap();
    assert_eq!(original.len() as u64, s.original_initrd_size);
    // The kernel release read from the bzImage header names the initrd's module directory.
    let raw = picaboot::archive::gunzip_all(&original, "original initrd").unwrap();
    let entries = cpio::read_all(&raw, "original initrd").unwrap();
    assert_eq!(
        picaboot::netboot::installer::kernel_version(&entries).as_deref(),
        Some(s.kernel_version.as_str())
    );
    assert!(initrd.len() > original.len());
    assert!(
        initrd[..original.len()] == original[..],
        "the first bytes are the original initrd"
    );
    let linux = std::fs::read(x.path().join(picaboot::netboot::installer::member_path(
        13,
        Frontend::Text,
        "linux",
    )))
    .unwrap();
    assert!(std::fs::read(netboot_dir().join("linux")).unwrap() == linux);
}

fn installer_deb_sha() -> String {
    let c = client(&common::mirror());
    let r = c.release("trixie").unwrap();
    let p = c.packages(&r, "main/binary-amd64/Packages").unwrap();
    c.find(&p, "debian-installer-13-netboot-amd64")
        .unwrap()
        .sha256
}

#[test]
fn appended_archive_holds_exactly_the_rendered_files() {
    common::require("cpio", "cpio");
    let (_, s) = built();
    let initrd = std::fs::read(netboot_dir().join("initrd.gz")).unwrap();
    let appended = &initrd[s.original_initrd_size as usize..];
    let members = gzip_members(appended);
    assert_eq!(members.len(), 2, "supplement + host archive");
    let host = members.last().unwrap();

    // Our reader: the host archive's regular files are the render tree, byte for byte.
    let tree = tree();
    let entries = cpio::read_all(host, "host archive").unwrap();
    let files: BTreeMap<String, (u32, Vec<u8>)> = entries
        .iter()
        .filter(|e| e.is_file())
        .map(|e| (e.path.clone(), (e.mode & 0o7777, e.data.clone())))
        .collect();
    let expected: BTreeMap<String, (u32, Vec<u8>)> = tree
        .files()
        .map(|(p, f)| (netboot::initrd_path(p), (f.mode, f.bytes.clone())))
        .collect();
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    assert!(
        files == expected,
        "contents and modes match the render tree"
    );
    assert!(files.contains_key("preseed.cfg") && files.contains_key("picaboot/late-command.sh"));
    assert!(entries
        .iter()
        .all(|e| e.uid == 0 && e.gid == 0 && e.mtime == 0));
    // Parents come before children.
    for (i, e) in entries.iter().enumerate() {
        if let Some((parent, _)) = e.path.rsplit_once('/') {
            assert!(
                entries[..i].iter().any(|p| p.path == parent && p.is_dir()),
                "{} before its parent",
                e.path
            );
        }
    }

    // Oracle: GNU cpio extracts the same files with the same modes.
    let x = tempfile::tempdir().unwrap();
    let archive = x.path().join("host.cpio");
    std::fs::write(&archive, host).unwrap();
    let root = x.path().join("root");
    std::fs::create_dir(&root).unwrap();
    picaboot::exec::run(
        "extract with cpio",
        Command::new("cpio")
            .args(["-i", "-d", "-m", "--quiet", "--no-absolute-filenames", "-F"])
            .arg(&archive)
            .current_dir(&root),
    )
    .unwrap();
    for (path, (mode, bytes)) in &expected {
        let p = root.join(path);
        assert!(&std::fs::read(&p).unwrap() == bytes, "{path}");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
            *mode,
            "{path}"
        );
    }
}

#[test]
fn supplement_carries_modules_depmod_and_status() {
    let (_, s) = built();
    let sup = s.supplement.as_ref().expect("supplement on by default");
    let initrd = std::fs::read(netboot_dir().join("initrd.gz")).unwrap();
    let members = gzip_members(&initrd[s.original_initrd_size as usize..]);
    let entries = cpio::read_all(&members[0], "supplement").unwrap();
    let get = |p: &str| {
        entries
            .iter()
            .find(|e| e.path == p)
            .map(|e| String::from_utf8_lossy(&e.data).into_owned())
    };
    let k = &s.kernel_version;
    let dep = get(&format!("usr/lib/modules/{k}/modules.dep")).expect("modules.dep");
    for m in ["raid1.ko", "md-mod.ko", "ahci.ko", "ext4.ko", "dm-mod.ko"] {
        assert!(
            dep.lines()
                .any(|l| l.split(':').next().unwrap().contains(m)),
            "{m} in modules.dep"
        );
    }
    assert!(
        dep.lines()
            .any(|l| l.starts_with("kernel/drivers/md/raid1.ko") && l.contains("md-mod.ko")),
        "raid1 depends on md-mod"
    );
    // The original initrd's modules stay in modules.dep (e.g. the NIC drivers).
    assert!(dep.contains("e1000e.ko"));
    let status = get("var/lib/dpkg/status").expect("dpkg status");
    assert!(
        status.contains("Package: anna\n"),
        "the installer's own status is kept"
    );
    assert!(status.contains(&format!(
        "Package: md-modules-{k}-di\nStatus: install ok installed\n"
    )));
    // Replaced udebs: files from the ordinary packages, status paragraphs for anna.
    for f in ["usr/sbin/mke2fs", "usr/sbin/sfdisk", "etc/mke2fs.conf"] {
        assert!(entries.iter().any(|e| e.path == f && e.is_file()), "{f}");
    }
    let mkfs = entries
        .iter()
        .find(|e| e.path == "usr/sbin/mkfs.ext4")
        .expect("mkfs.ext4");
    assert!(mkfs.is_symlink() && mkfs.data == b"mke2fs");
    for u in [
        "e2fsprogs-udeb",
        "libfdisk1-udeb",
        "fdisk-udeb",
        "xfsprogs-udeb",
        "ntfs-3g-udeb",
    ] {
        assert!(
            status.contains(&format!("Package: {u}\nStatus: install ok installed\n")),
            "{u}"
        );
    }
    assert!(
        !sup.modules.is_empty()
            && sup
                .modules
                .iter()
                .all(|m| entries.iter().any(|e| &e.path == m))
    );
}

#[test]
fn manifest_covers_every_file_and_output_is_deterministic() {
    let (out, _) = built();
    let dir = netboot_dir();
    let manifest: Vec<output::ManifestEntry> =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let mut on_disk = Vec::new();
    for e in walk(&dir) {
        let rel = e.strip_prefix(&dir).unwrap().to_string_lossy().into_owned();
        if rel != "manifest.json" {
            on_disk.push(rel);
        }
    }
    on_disk.sort();
    assert_eq!(
        manifest.iter().map(|m| m.path.clone()).collect::<Vec<_>>(),
        on_disk
    );
    for m in &manifest {
        let bytes = std::fs::read(dir.join(&m.path)).unwrap();
        use sha2::Digest;
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&bytes)),
            m.sha256,
            "{}",
            m.path
        );
    }
    for f in [
        "linux",
        "initrd.gz",
        "boot.ipxe",
        "netbootxyz-custom.ipxe",
        "grub.cfg",
        "pxelinux.cfg/01-02-50-1c-a1-00-00",
    ] {
        assert!(on_disk.iter().any(|p| p == f), "{f}");
    }
    // Same inputs, same bytes.
    let again = tempfile::tempdir().unwrap();
    build(again.path(), Frontend::Text, true).unwrap();
    let a = std::fs::read(netboot::target_dir(out.path(), HOST).join("manifest.json")).unwrap();
    let b = std::fs::read(netboot::target_dir(again.path(), HOST).join("manifest.json")).unwrap();
    assert_eq!(String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
}

#[test]
fn boot_entries_name_the_install_nic() {
    let dir = netboot_dir();
    let ipxe = std::fs::read_to_string(dir.join("boot.ipxe")).unwrap();
    assert!(ipxe.starts_with("#!ipxe\n"));
    for want in [
        "auto=true",
        "priority=critical",
        "BOOTIF=01-02-50-1c-a1-00-00",
        "interface=auto",
        "console=ttyS0,115200",
        "initrd initrd.gz",
    ] {
        assert!(ipxe.contains(want), "{want} in boot.ipxe:\n{ipxe}");
    }
    let xyz = std::fs::read_to_string(dir.join("netbootxyz-custom.ipxe")).unwrap();
    assert!(
        xyz.contains(":custom\n") && xyz.contains("http://10.0.2.2:8080/alice/netboot/initrd.gz"),
        "{xyz}"
    );
    let pxe = std::fs::read_to_string(dir.join("pxelinux.cfg/01-02-50-1c-a1-00-00")).unwrap();
    assert!(
        pxe.contains("KERNEL linux") && pxe.contains("APPEND initrd=initrd.gz auto=true"),
        "{pxe}"
    );
    let grub = std::fs::read_to_string(dir.join("grub.cfg")).unwrap();
    assert_eq!(
        grub.matches("menuentry ").count(),
        2,
        "one entry per MAC:\n{grub}"
    );
}

#[test]
fn failure_publishes_nothing() {
    let out = tempfile::tempdir().unwrap();
    let project = picaboot::project::open(&profiles()).unwrap();
    let host = &project.loaded.profiles.hosts[HOST];
    let target = netboot::target_dir(out.path(), HOST);
    let missing = out.path().join("no-mirror");
    let e = netboot::stage(
        &client(&format!("file://{}", missing.display())),
        host,
        &tree(),
        &target,
        &NetbootOptions {
            frontend: None,
            supplement: true,
            base_url: "http://x".into(),
            keyring_append: None,
            report_to: None,
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("dists/trixie/InRelease"), "{e}");
    assert!(!target.exists());
    let left: Vec<_> = walk(out.path());
    assert!(left.is_empty(), "no leftovers: {left:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| !e.file_type().is_dir())
        .map(|e| e.into_path())
        .collect()
}

#[test]
fn corrupt_cache_blob_fails_after_staging_and_publishes_nothing() {
    built();
    // A private cache: the shared one's records and its blobs up to 90 MB (not the .debs).
    let cache = tempfile::tempdir().unwrap();
    let shared = common::shared_cache();
    for sub in ["derived", "sha256"] {
        std::fs::create_dir_all(cache.path().join(sub)).unwrap();
        for e in std::fs::read_dir(shared.join(sub))
            .unwrap()
            .filter_map(Result::ok)
        {
            if e.metadata().unwrap().len() <= 90 << 20 {
                std::fs::copy(e.path(), cache.path().join(sub).join(e.file_name())).unwrap();
            }
        }
    }
    let (_, s) = built();
    let blob = cache.path().join("sha256").join(&s.original_initrd_sha256);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[1000] ^= 1;
    std::fs::write(&blob, bytes).unwrap();

    let out = tempfile::tempdir().unwrap();
    let project = picaboot::project::open(&profiles()).unwrap();
    let host = &project.loaded.profiles.hosts[HOST];
    let target = netboot::target_dir(out.path(), HOST);
    let client = Client::new(ClientOptions {
        mirror: common::mirror(),
        keyring: PathBuf::from(DEFAULT_KEYRING),
        insecure: false,
        cache_dir: cache.path().to_path_buf(),
    });
    let e = netboot::stage(
        &client,
        host,
        &tree(),
        &target,
        &NetbootOptions {
            frontend: Some(Frontend::Text),
            supplement: true,
            base_url: "http://x".into(),
            keyring_append: None,
            report_to: None,
        },
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&s.original_initrd_sha256) && msg.contains("SHA256 mismatch"),
        "{msg}"
    );
    assert!(!target.exists(), "nothing published");
    assert!(walk(out.path()).is_empty(), "no leftovers");
    assert!(!blob.exists(), "the corrupt blob left the cache");
}

#[test]
fn cli_exit_codes() {
    let bin = env!("CARGO_BIN_EXE_picaboot");
    let out = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(bin)
            .args(args)
            .arg("--profiles")
            .arg(profiles())
            .arg("-o")
            .arg(out.path())
            .output()
            .unwrap()
    };
    let o = run(&["netboot", "nosuchhost"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = run(&["netboot", HOST, "--mirror", "ftp://example/debian"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let missing = out.path().join("none");
    let o = run(&[
        "netboot",
        HOST,
        "--mirror",
        &format!("file://{}", missing.display()),
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("dists/trixie/InRelease"), "{err}");
    assert!(walk(out.path()).is_empty());
}

/// `netboot --all`: every host's artifacts, and one combined netboot.xyz menu listing each host
/// once with its own kernel and initrd under --base-url; `--json` prints one summary per host.
#[test]
fn netboot_all_writes_every_host_and_one_combined_menu() {
    common::sbin_path();
    common::require("gpgv", "gpgv");
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_picaboot"))
        .args([
            "netboot",
            "--all",
            "--no-supplement",
            "--json",
            "--frontend",
            "text",
        ])
        .args([
            "--base-url",
            "http://boot.example:8080/",
            "--mirror",
            &common::mirror(),
        ])
        .arg("--profiles")
        .arg(profiles())
        .arg("--cache")
        .arg(common::shared_cache())
        .arg("-o")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summaries: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let project = picaboot::project::open(&profiles()).unwrap();
    let hosts: Vec<&String> = project.loaded.profiles.hosts.keys().collect();
    assert_eq!(summaries.len(), hosts.len());
    let menu = std::fs::read_to_string(out.path().join("netbootxyz-custom.ipxe")).unwrap();
    for h in hosts {
        assert!(netboot::target_dir(out.path(), h)
            .join("boot.ipxe")
            .is_file());
        assert_eq!(
            menu.matches(&format!("item picaboot_{h} ")).count(),
            1,
            "{menu}"
        );
        assert!(
            menu.contains(&format!(
                "kernel http://boot.example:8080/{h}/netboot/linux initrd=initrd.gz "
            )),
            "{menu}"
        );
        assert!(menu.contains(&format!(
            "initrd http://boot.example:8080/{h}/netboot/initrd.gz\n"
        )));
    }
}
