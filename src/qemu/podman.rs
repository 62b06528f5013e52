//! Container images tested inside a QEMU guest: one Debian guest with the container runtime
//! ([`Runtime`]: podman and runc, or Debian's `docker.io`; built once, cached), the image
//! archives on a read-only disk, a scratch disk for container storage. Inside, each image is
//! started (with docker: first `docker load`ed from its `NAME.oci.tar` as it is) and its declared
//! check retried until it passes or times out; results come back as `PICABOOT-CHECK` lines
//! ([`super::Report`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::guest::{self, GuestError, GuestRecipe};
use super::vm::{Bus, Disk, VmSpec};
use super::{Accel, Report};

/// One image to test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUnderTest {
    /// Image name (used in check names; letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// Its `oci-archive` tar.
    pub archive: PathBuf,
    /// Shell command run in the container (`/bin/sh -c`) that must exit 0.
    pub check: String,
    /// Seconds the check may take to pass (retried meanwhile).
    pub timeout_s: u64,
    /// Open-files limit for the container.
    pub nofile: u64,
}

/// The container runtime of the test guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Runtime {
    /// podman with runc, reading the `oci-archive` directly.
    #[default]
    Podman,
    /// Debian's `docker.io` (classic image store): `docker load` of the archive, then
    /// `docker run`, as on Picasoft's Swarm nodes.
    Docker,
}

impl Runtime {
    /// Packages of the guest beyond minbase and the kernel, for Debian `suite` (since trixie
    /// the `docker` command is in its own package, `docker-cli`).
    pub fn guest_packages(self, suite: &str) -> Vec<String> {
        let p: &[&str] = match self {
            Runtime::Podman => &["podman", "runc", "e2fsprogs", "util-linux"],
            Runtime::Docker if matches!(suite, "bullseye" | "bookworm") => {
                &["docker.io", "e2fsprogs", "util-linux"]
            }
            Runtime::Docker => &["docker.io", "docker-cli", "e2fsprogs", "util-linux"],
        };
        p.iter().map(|s| s.to_string()).collect()
    }
}

const PODMAN_START: &str = r#"P="podman --cgroup-manager=cgroupfs --events-backend=file"
RM="$P rm -f -t 1"
load_image() { return 0; }
start_image() { # NAME NOFILE
	$P run -d --name "c-$1" --runtime runc --ulimit "nofile=$2:$2" --ulimit nproc=4096:4096 \
		--network none "oci-archive:/scenario/$1.tar"
}
"#;

const DOCKER_START: &str = r#"modprobe overlay 2>/dev/null
mkdir -p /var/lib/containers/docker /etc/docker
dockerd --data-root /var/lib/containers/docker --iptables=false --ip-forward=false --bridge=none \
	--exec-opt native.cgroupdriver=cgroupfs > /tmp/dockerd.log 2>&1 &
t0=$(date +%s)
until docker info > /dev/null 2>&1 || [ $(( $(date +%s) - t0 )) -gt 90 ]; do sleep 1; done
docker info > /dev/null 2>&1
check dockerd $? "$(docker version --format 'docker {{.Server.Version}}' 2>&1 | head -1) $(tail -2 /tmp/dockerd.log | tr '\n' ' ')"
P=docker
RM="docker rm -f"
load_image() { # NAME: the archive as it is, into the classic image store
	if ! docker load -i "/scenario/$1.tar" > "/tmp/$1.load" 2>&1; then
		check "$1-load" 1 "$(tail -3 "/tmp/$1.load" | tr '\n' ' ')"
		return 1
	fi
	check "$1-load" 0 "$(tail -1 "/tmp/$1.load")"
}
start_image() { # NAME NOFILE
	docker run -d --name "c-$1" --ulimit "nofile=$2:$2" --ulimit nproc=4096:4096 \
		--network none "$1:latest"
}
"#;

/// The guest script that runs every image's check under `runtime`.
pub fn scenario_script(images: &[ImageUnderTest], runtime: Runtime) -> String {
    let mut s = String::from(
        r#"#!/bin/sh
# Runs inside the picaboot test guest: each image started with its runtime, its check retried.
set -u
check() { if [ "$2" = 0 ]; then echo "PICABOOT-CHECK $1 PASS $3"; else echo "PICABOOT-CHECK $1 FAIL $3"; fi; }
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mkdir -p /var/lib/containers /var/tmp
mkfs.ext4 -q -F /dev/vdc && mount /dev/vdc /var/lib/containers
check storage $? "container storage on /dev/vdc"
"#,
    );
    s.push_str(match runtime {
        Runtime::Podman => PODMAN_START,
        Runtime::Docker => DOCKER_START,
    });
    s.push_str(
        r#"run_image() { # NAME NOFILE TIMEOUT
	name=$1
	echo "PICABOOT-STEP $name: loading and starting (the runtime unpacks the archive)"
	load_image "$name" || return
	t0=$(date +%s)
	if ! start_image "$name" "$2" > "/tmp/$name.run" 2>&1; then
		check "$name-start" 1 "$(tail -3 "/tmp/$name.run" | tr '\n' ' ')"
		return
	fi
	check "$name-start" 0 "started in $(( $(date +%s) - t0 )) s"
	t1=$(date +%s)
	rc=1
	while [ $(( $(date +%s) - t1 )) -le "$3" ]; do
		if $P exec "c-$name" /bin/sh -c "$(cat "/scenario/$name.check")" > "/tmp/$name.check" 2>&1; then
			rc=0
			break
		fi
		sleep 1
	done
	if [ "$rc" = 0 ]; then
		check "$name-check" 0 "passed after $(( $(date +%s) - t1 )) s"
	else
		check "$name-check" 1 "$(tail -2 "/tmp/$name.check" | tr '\n' ' ') | log: $($P logs --tail 5 "c-$name" 2>&1 | tr '\n' ' ')"
	fi
	$RM "c-$name" > /dev/null 2>&1
}
"#,
    );
    for i in images {
        s.push_str(&format!(
            "run_image {} {} {}\n",
            i.name, i.nofile, i.timeout_s
        ));
    }
    s.push_str("exit 0\n");
    s
}

/// Why the image VM could not run.
#[derive(Debug, thiserror::Error)]
pub enum ImageVmError {
    /// Building the guest or a disk failed.
    #[error(transparent)]
    Guest(#[from] GuestError),
    /// QEMU could not start.
    #[error(transparent)]
    Exec(#[from] crate::exec::ExecError),
    /// A file could not be copied to the scenario disk.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An image name unfit for a file or check name.
    #[error("image name `{0}` must be letters, digits, `-`, `_` or `.`")]
    BadName(String),
}

/// The outcome of one VM run.
#[derive(Debug, Clone)]
pub struct ImageVmRun {
    /// Parsed checks.
    pub report: Report,
    /// Wall time.
    pub seconds: f64,
    /// Console log path.
    pub console: PathBuf,
    /// What accelerator was used, and why.
    pub accel: String,
}

/// Boots one guest that tests every image; `work` keeps the disks and the console log.
pub fn run(
    images: &[ImageUnderTest],
    runtime: Runtime,
    suite: &str,
    mirror: &str,
    work: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<ImageVmRun, ImageVmError> {
    for i in images {
        let ok = !i.name.is_empty()
            && i.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok {
            return Err(ImageVmError::BadName(i.name.clone()));
        }
    }
    let recipe = GuestRecipe {
        suite: suite.to_string(),
        mirror: mirror.to_string(),
        packages: runtime.guest_packages(suite),
        image_mib: 2048,
    };
    progress("guest: debootstrap image (cached by content)");
    let g = guest::build(&recipe, &guest::cache_root())?;
    let scen = work.join("scenario");
    std::fs::create_dir_all(&scen).map_err(|source| ImageVmError::Io {
        path: scen.clone(),
        source,
    })?;
    let write = |p: PathBuf, bytes: &[u8]| {
        std::fs::write(&p, bytes).map_err(|source| ImageVmError::Io { path: p, source })
    };
    write(
        scen.join("run"),
        scenario_script(images, runtime).as_bytes(),
    )?;
    for i in images {
        write(scen.join(format!("{}.check", i.name)), i.check.as_bytes())?;
        let dst = scen.join(format!("{}.tar", i.name));
        std::fs::copy(&i.archive, &dst).map_err(|source| ImageVmError::Io {
            path: i.archive.clone(),
            source,
        })?;
    }
    guest::scenario_disk(&scen, &work.join("scenario.img"))?;
    guest::sparse_disk(&work.join("storage.img"), 8 << 30)?;
    let (accel, why) = Accel::detect(&g.kernel);
    progress(&format!("accelerator: {why}"));
    let disk = |path: PathBuf, read_only: bool, snapshot: bool| Disk {
        path,
        bus: Bus::Virtio,
        serial: None,
        read_only,
        snapshot,
        model: None,
        bootindex: None,
    };
    let spec = VmSpec {
        name: "image-test".into(),
        accel,
        // Under single-threaded TCG every vCPU shares one host thread: a second vCPU adds
        // only scheduling work (and leaves the host's other core to the tests beside it).
        cpus: if accel == Accel::Kvm { 2 } else { 1 },
        memory_mib: 3072,
        kernel: Some(g.kernel.clone()),
        initrd: Some(g.initrd.clone()),
        append: "console=ttyS0 root=/dev/vda rw init=/usr/local/sbin/picaboot-guest-init panic=-1 loglevel=4".into(),
        disks: vec![
            disk(g.root.clone(), false, true),
            disk(work.join("scenario.img"), true, false),
            disk(work.join("storage.img"), false, false),
        ],
        console: work.join("console.log"),
        reboot: false,
        extra_args: Vec::new(),
    };
    let start = Instant::now();
    let mut vm = spec.start()?;
    // Boot, then per image: unpacking its archive (about 200 MB for tx-apache, gunzipped under
    // emulation: 240 s were not enough once here, with an install VM, the test tiers and a
    // build sharing the two cores) plus its check's own timeout.
    let limit = Duration::from_secs(180 + images.iter().map(|i| 600 + i.timeout_s).sum::<u64>());
    let outcome = vm.wait_for("PICABOOT-DONE", limit, |line| {
        if line.contains("PICABOOT-") {
            progress(&format!(
                "[{:>4.0} s] {}",
                start.elapsed().as_secs_f64(),
                line.trim()
            ));
        }
    });
    vm.wait_exit(Duration::from_secs(20));
    let console = vm.console();
    let mut report = Report::parse(&console);
    report.guest_end = super::vm::explain_end(&outcome, limit, &console);
    Ok(ImageVmRun {
        report,
        seconds: start.elapsed().as_secs_f64(),
        console: spec.console.clone(),
        accel: why,
    })
}

impl crate::exit_class::ExitClass for ImageVmError {
    fn exit_class(&self) -> crate::exit_class::Class {
        use crate::exit_class::Class;
        match self {
            ImageVmError::BadName(_) => Class::User,
            _ => Class::Env,
        }
    }
}
