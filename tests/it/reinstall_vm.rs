//! End to end: `picaboot reinstall alice --yes` against a QEMU box. The box is shaped like Alice
//! (two SSDs and two HDDs by role, scaled down by `install::shape` as the install proof does,
//! the scaled sizes written into a scratch copy of the profiles), its install NIC on one user
//! network whose TFTP chains iPXE to reinstall's serve, its public NIC on a second user network
//! that *is* Alice's public network (QEMU's side of it is the profile's gateway, so rc.local's
//! static address and on-link route work as at the ISP) with a port forward to its sshd. A
//! test AMT behind Apache mod_auth_digest powers it (tests/it/common/amt.rs).
//!
//! `reinstall` runs as an admin runs it, with the test box's explicit
//! `--allow-unverified-udebs` (this machine's udeb index is stale) and the run's own ssh key in
//! an ssh-agent (the profile's `ssh-keys` holds only its public half). It must: reset the box
//! into a one-time network boot, follow every installer phase over the installer's own syslog,
//! see `done`, wait for ssh after the first boot, record the new host key, and pass the
//! post-install check over ssh (exit 0). About an hour under TCG; not in CI: run it with
//! `scripts/test-reinstall`.

use crate::common;
use crate::common::amt as amt_sim;
use crate::common::amt_vm;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use amt_sim::{point_alice_at, Apache};
use amt_vm::{chain_to_serve, vm_behind_amt};
use picaboot::install::shape::{self, Shape, VmDisk};
use picaboot::profile::{DiskRole, NicRole};
use picaboot::qemu::vm::{disk_args, Bus, Disk};

const USER: &str = "admin";
const PASSWORD: &str = "vm-test-amt-password-73";
/// The whole reinstall, install and first boot included.
const LIMIT: Duration = Duration::from_secs(110 * 60);

/// Writes the VM's disk sizes (`install::shape`) into the scratch hardware profile.
fn scale_hardware(profiles: &Path, disks: &[VmDisk]) {
    let hw = profiles.join("hardware/q170m-i5-6500.toml");
    let mut doc: toml_edit::DocumentMut = std::fs::read_to_string(&hw).unwrap().parse().unwrap();
    for t in doc["disks"].as_array_of_tables_mut().unwrap().iter_mut() {
        let id = t["id"].as_str().unwrap().to_string();
        let d = disks.iter().find(|d| d.id == id).unwrap();
        t["size"] = toml_edit::value(d.bytes as i64);
    }
    std::fs::write(&hw, doc.to_string()).unwrap();
}

/// Writes the scaled fixed volumes (`install::shape`) into a scratch host profile.
fn scale_volumes(profiles: &Path, name: &str, volumes: &[(String, String, u64)]) {
    let host = profiles.join(format!("hosts/{name}.toml"));
    let mut doc: toml_edit::DocumentMut = std::fs::read_to_string(&host).unwrap().parse().unwrap();
    let vols = doc["storage"]["volumes"].as_array_of_tables_mut().unwrap();
    for (group, name, bytes) in volumes {
        let t = vols
            .iter_mut()
            .find(|t| t["group"].as_str() == Some(group) && t["name"].as_str() == Some(name))
            .unwrap();
        assert_eq!(bytes % (1 << 20), 0);
        t["size"] = toml_edit::value(format!("{}MiB", bytes >> 20));
    }
    std::fs::write(&host, doc.to_string()).unwrap();
}

/// The run's own ssh key in an ssh-agent; the profile lists only its public half.
struct Agent {
    child: Child,
    sock: PathBuf,
    public: String,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let key = dir.join("id_ed25519");
        common::run_ok(
            Command::new("ssh-keygen")
                .args([
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "picaboot reinstall test",
                ])
                .arg("-f")
                .arg(&key),
        );
        let sock = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(Stdio::null())
            .spawn()
            .expect("ssh-agent (Debian package openssh-client)");
        let start = Instant::now();
        while !sock.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "ssh-agent did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        common::run_ok(
            Command::new("ssh-add")
                .arg(&key)
                .env("SSH_AUTH_SOCK", &sock),
        );
        let public = std::fs::read_to_string(key.with_extension("pub"))
            .unwrap()
            .trim()
            .to_string();
        Agent {
            child,
            sock,
            public,
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "about an hour of TCG: scripts/test-reinstall"]
fn reinstall_alice_installs_first_boots_and_passes_its_post_install_check() {
    amt_vm::require_qemu();
    common::require("ssh-agent", "openssh-client");
    // Disks (7 GiB per SSD member, written whole by the first resync) and logs: kept after a
    // failure for a look, replaced by the next run.
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reinstall-vm");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    eprintln!("work directory: {}", work.display());

    // The profiles: Alice scaled to the VM, reached through the test AMT, the run's key.
    let dir = common::scratch_profiles();
    let profiles = dir.path().join("profiles");
    let project = picaboot::project::open(&profiles).unwrap();
    let host = project.loaded.profiles.hosts["alice"].clone();
    let (vm_disks, _) = shape::shape(&host, &Shape::default()).unwrap();
    scale_hardware(&profiles, &vm_disks);
    // Bob shares the hardware profile: both hosts are scaled for the profiles to load.
    for (name, h) in &project.loaded.profiles.hosts {
        let (_, overrides) = shape::shape(h, &Shape::default()).unwrap();
        scale_volumes(&profiles, name, &overrides.volume_sizes);
    }
    let agent = Agent::start(&work);
    let keys = std::fs::read_to_string(profiles.join("hosts/alice.toml")).unwrap();
    let placeholder = keys
        .lines()
        .find(|l| l.trim_start().starts_with("\"ssh-ed25519 "))
        .unwrap()
        .trim()
        .trim_end_matches(',')
        .to_string();
    common::edit(
        &profiles.join("hosts/alice.toml"),
        &placeholder,
        &format!("\"{}\"", agent.public),
    );

    // The box: SSDs on the first SATA ports (SeaBIOS boots the first disk, as the real
    // box's firmware is set to), the install NIC, the public NIC on Alice's own network.
    let mut disks = Vec::new();
    let mut ordered = vm_disks.clone();
    ordered.sort_by_key(|d| (d.role != DiskRole::Ssd, d.id.clone()));
    for (port, d) in ordered.iter().enumerate() {
        let path = work.join(format!("{}.raw", d.id));
        std::fs::File::create(&path)
            .unwrap()
            .set_len(d.bytes)
            .unwrap();
        disks.push(Disk {
            path,
            bus: Bus::Sata {
                port: port as u8,
                ssd: d.role == DiskRole::Ssd,
            },
            serial: Some(d.serial.clone()),
            read_only: false,
            snapshot: false,
            model: d.model.clone(),
            bootindex: None,
        });
    }
    let port = common::free_port();
    let ssh_port = common::free_port();
    let tftp = chain_to_serve(&work, port);
    let install_nic = host.nic_with_role(NicRole::Install).unwrap();
    let public_nic = host
        .nics
        .iter()
        .find(|n| n.name == host.network.interface)
        .unwrap();
    let addr = host.network.ipv4.addr();
    let gateway = host.network.ipv4_gateway;
    let public_net = ipnet::Ipv4Net::new(gateway, 24).unwrap().trunc();
    assert!(
        public_net.contains(&addr),
        "{addr} and its gateway {gateway} share a /24"
    );
    let mut args: Vec<String> = ["-cpu", "max", "-smp", "1", "-m", "3072"]
        .map(String::from)
        .to_vec();
    args.extend(disk_args(&disks));
    args.extend([
        "-netdev".into(),
        format!("user,id=n0,tftp={},bootfile=chain.ipxe", tftp.display()),
        "-device".into(),
        format!("e1000e,netdev=n0,mac={}", install_nic.mac),
        "-netdev".into(),
        format!(
            "user,id=n1,net={public_net},host={gateway},dhcpstart={},hostfwd=tcp:127.0.0.1:{ssh_port}-{addr}:22",
            // Out of the way of the profile's addresses.
            std::net::Ipv4Addr::from(u32::from(public_net.network()) + 200)
        ),
        "-device".into(),
        format!("e1000e,netdev=n1,mac={}", public_nic.mac),
    ]);
    eprintln!("the box: {}", args.join(" "));
    let bx = vm_behind_amt(&work, args);
    let (sim, starts) = (bx.sim.clone(), bx.starts.clone());
    let apache = Apache::start(&sim.addr, USER, PASSWORD, false);
    point_alice_at(&profiles, &apache.http, None, None);

    // reinstall, as an admin runs it.
    let out = work.join("out");
    let start = Instant::now();
    let mut child = amt_vm::reinstall_alice(&profiles, port, &out, USER, PASSWORD)
        .args([
            "--ssh",
            "root@127.0.0.1",
            "--ssh-port",
            &ssh_port.to_string(),
        ])
        .args(["--first-boot-timeout-min", "30"])
        .env("SSH_AUTH_SOCK", &agent.sock)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let said = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("reinstall| {line}");
            lines.push(line);
        }
        lines
    });
    let printed = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "reinstall did not end within {} min (logs in {})",
                LIMIT.as_secs() / 60,
                work.display()
            );
        }
        std::thread::sleep(Duration::from_secs(5));
    };
    let said = said.join().unwrap();
    let printed = printed.join().unwrap();
    std::fs::write(work.join("reinstall.stderr"), said.join("\n")).unwrap();
    std::fs::write(work.join("reinstall.stdout"), &printed).unwrap();
    eprintln!(
        "reinstall ended after {:.0} s: {status}\n{printed}",
        start.elapsed().as_secs_f64()
    );
    assert!(
        status.success(),
        "reinstall failed: {status} (logs in {})",
        work.display()
    );

    // What an admin reads: the trust flag, each phase in order, the end, the new key, the
    // verdict.
    let said_text = said.join("\n");
    for want in [
        "TEST BOX: --allow-unverified-udebs",
        "alice: udebs: ",
        "alice: AMT: next boot from the network",
        "fetched /alice/netboot/boot.ipxe (",
        "fetched /alice/netboot/linux (",
        "fetched /alice/netboot/initrd.gz (",
    ] {
        assert!(said_text.contains(want), "reinstall never said `{want}`");
    }
    // Every phase before the installer's `done` is entered then ended, in order, and the end
    // of the install is said after the last of them.
    let phases = picaboot::ops::reinstall::Milestone::ALL;
    let (last, before_done) = phases.split_last().unwrap();
    assert_eq!(*last, picaboot::ops::reinstall::Milestone::Done);
    let mut at = 0;
    for phase in before_done {
        for want in [
            format!("alice: {phase} ... ("),
            format!("alice: {phase} done in "),
        ] {
            let Some(i) = said_text[at..].find(&want) else {
                panic!("`{want}` not said after the previous phases");
            };
            at += i;
        }
    }
    assert!(
        said_text[at..].contains("alice: the installer reported the end of the install"),
        "the end of the install not said after the last phase"
    );
    for want in [
        "ssh answers on 127.0.0.1:",
        "new host key: ",
        "post-install check: ",
        "alice: reinstalled and checked",
    ] {
        assert!(said_text.contains(want), "reinstall never said `{want}`");
    }
    let known = std::fs::read_to_string(out.join("alice/known_hosts")).unwrap();
    assert!(
        known.contains(&format!("[127.0.0.1]:{ssh_port} ssh-ed25519 ")),
        "{known}"
    );
    // The verdict: every check passed, the harness key among them, none failed.
    let checks: Vec<&str> = printed.lines().filter(|l| l.starts_with("PASS ")).collect();
    assert!(
        !printed.lines().any(|l| l.starts_with("FAIL ")),
        "{printed}"
    );
    for want in [
        "md-md0",
        "md-md1",
        "md-md2",
        "harness-key-absent",
        "authorized-keys",
    ] {
        assert!(
            checks
                .iter()
                .any(|l| l.starts_with(&format!("PASS {want} "))),
            "no passed check {want}:\n{printed}"
        );
    }
    // One reset with a one-time network boot; the installer's own reboot went to the disk.
    assert_eq!(sim.power_states(), ["PowerState 10"]);
    assert!(starts.lock().unwrap()[1].0, "the reset was a network boot");
    for l in said.iter().filter(|l| l.contains(" done in ")) {
        eprintln!("phase timing| {l}");
    }
    drop(bx);
    let _ = std::fs::remove_dir_all(&work);
}
