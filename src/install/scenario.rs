//! `picaboot test install HOST`: the install proof. A VM shaped like the box (disks by role,
//! scaled; the profile's NIC MACs) installs from the host's netboot artifacts (text frontend,
//! same preseed otherwise), the SSDs' partition tables are compared with the plan from the
//! host, then the VM boots from disk whole and with each SSD removed, and the self-test the
//! install put in place reports every check on the serial console.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::harness::{self, UdebSource};
use super::machine::Machine;
use super::phases::{self, Phase};
use super::shape::{self, Shape, VmDisk};
use crate::debian::{Client, ClientOptions};
use crate::netboot::{self, NetbootOptions};
use crate::profile::{Frontend, Host};
use crate::qemu::vm::{Outcome, VmSpec};
use crate::qemu::{Accel, Report};
use crate::render::{render_hosts, RenderError, RenderOptions, TestVariant, HARNESS_UID};
use crate::serve::mirror::MirrorProxy;
use crate::serve::session::{ServeSession, SessionConfig};
use crate::{output, project};

/// Why the scenario could not run (as opposed to a check that failed).
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// Bad profiles or arguments.
    #[error(transparent)]
    Profile(#[from] crate::profile::ProfileError),
    /// The VM cannot be shaped.
    #[error(transparent)]
    Shape(#[from] shape::ShapeError),
    /// The udeb source could not be settled.
    #[error(transparent)]
    Harness(#[from] harness::HarnessError),
    /// Rendering failed.
    #[error(transparent)]
    Render(#[from] crate::render::RenderError),
    /// Building the netboot artifacts failed.
    #[error(transparent)]
    Netboot(#[from] netboot::NetbootError),
    /// QEMU or another program failed.
    #[error(transparent)]
    Exec(#[from] crate::exec::ExecError),
    /// The serve process failed.
    #[error("serve: {0}")]
    Serve(String),
    /// An option this run refuses (`--tamper`, an output directory that is not its own).
    #[error("{0}")]
    Refused(String),
    /// A file operation.
    #[error("{what} {path}: {source}")]
    Io {
        /// What.
        what: &'static str,
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

pub(super) fn io<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> InstallError + 'a {
    move |source| InstallError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Profiles directory.
    pub profiles: PathBuf,
    /// Host profile name.
    pub host: String,
    /// Output directory (reports and logs go to OUT/HOST/).
    pub out: PathBuf,
    /// Upstream Debian mirror (URL).
    pub mirror: String,
    /// Upstream security mirror (URL).
    pub security: String,
    /// Debian archive keyring.
    pub keyring: PathBuf,
    /// Cache directory.
    pub cache_dir: PathBuf,
    /// Serve a harness udeb suite when the mirror's udeb index is not the signed one.
    pub allow_unverified_udebs: bool,
    /// Also boot with each SSD removed.
    pub degraded: bool,
    /// Alter this rendered file after the install (proves the file check fails).
    pub tamper: Option<String>,
    /// VM disk sizes.
    pub shape: Shape,
    /// VM memory.
    pub memory_mib: u32,
    /// vCPUs under KVM; under TCG the VM has one (single-threaded TCG runs every vCPU on one
    /// host thread, so a second vCPU adds scheduling and IPIs and no speed).
    pub cpus: u32,
    /// Limit for the install.
    pub install_timeout: Duration,
    /// Limit per boot.
    pub boot_timeout: Duration,
    /// Keep the disk images.
    pub keep_disks: bool,
}

/// What a step of the scenario proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// One installer phase (its [`Step::phase`]).
    Install,
    /// A partition table read from the host against the plan.
    PartitionTable,
    /// What reached serve (remote syslog, the late command's report).
    Report,
    /// A boot from disk or one of its self-test checks.
    Boot,
}

/// One step of the scenario and its verdict.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    /// Name (`install/partitioning`, `gpt/ssd0`, `boot-whole/md-md0`).
    pub name: String,
    /// What it proves.
    pub kind: StepKind,
    /// The installer phase, for an [`StepKind::Install`] step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Passed.
    pub passed: bool,
    /// What was seen.
    pub detail: String,
    /// Seconds spent (0 when not timed).
    pub seconds: f64,
}

/// The whole run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunOutcome {
    /// Host.
    pub host: String,
    /// Accelerator used and why.
    pub accel: String,
    /// Where the installer's udebs came from.
    pub udeb_source: UdebSource,
    /// Every step.
    pub steps: Vec<Step>,
    /// Screenshots of the VM's screen (the gtk proof), in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub screenshots: Vec<Screenshot>,
    /// Seconds in all.
    pub seconds: f64,
}

/// A screenshot of the VM's screen (QMP `screendump`, PNG).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Screenshot {
    /// Path relative to `OUT/HOST/` (`screens/03-partitioning.png`).
    pub file: String,
    /// What it shows (a phase's start, a quiet syslog, the stop).
    pub label: String,
    /// Seconds since the VM started.
    pub seconds: f64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Size of the file.
    pub bytes: u64,
}

impl RunOutcome {
    /// The failed steps.
    pub fn failures(&self) -> Vec<&Step> {
        self.steps.iter().filter(|s| !s.passed).collect()
    }

    /// JUnit XML (valid XML 1.0: control characters replaced).
    pub fn junit(&self) -> String {
        let class = format!("install-{}", self.host);
        crate::xml::JUnit {
            suite: &class,
            seconds: self.seconds,
            properties: [
                ("udeb-source", self.udeb_source.describe()),
                ("accelerator", self.accel.clone()),
            ]
            .into_iter()
            .chain(
                self.screenshots
                    .iter()
                    .map(|s| ("screenshot", s.file.clone())),
            )
            .collect(),
            cases: self
                .steps
                .iter()
                .map(|s| crate::xml::Case {
                    class: &class,
                    name: &s.name,
                    seconds: Some(s.seconds),
                    passed: s.passed,
                    detail: &s.detail,
                })
                .collect(),
        }
        .to_xml()
    }
}

/// `--tamper` names a rendered file.
fn check_tamper(opts: &Options) -> Result<(), InstallError> {
    let Some(t) = &opts.tamper else {
        return Ok(());
    };
    let ok = t.starts_with('/')
        && t.len() > 1
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
        && !t.contains("..");
    if ok {
        Ok(())
    } else {
        Err(InstallError::Refused(format!(
            "--tamper {t}: give an absolute path of a rendered file"
        )))
    }
}

/// The run's directory, emptied. It must hold nothing of render's (manifest.json), netboot's
/// or reinstall's (known_hosts, state): their output is not this run's to delete.
pub(super) fn fresh_work_dir(opts: &Options) -> Result<PathBuf, InstallError> {
    let work = opts.out.join(&opts.host);
    for theirs in ["manifest.json", "known_hosts", "state"] {
        if std::fs::symlink_metadata(work.join(theirs)).is_ok() {
            return Err(InstallError::Refused(format!(
                "{} holds {theirs}, written by render/reinstall: test install clears its directory \
                 and will not delete their output there; choose another -o (default out/test)",
                work.display()
            )));
        }
    }
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(io("clean", &work))?;
    }
    std::fs::create_dir_all(&work).map_err(io("create", &work))?;
    Ok(work)
}

/// The host as the profiles describe it, the VM's disks shaped like its disks, and the
/// overrides that point its profile at them.
pub(super) fn shape_host(
    opts: &Options,
) -> Result<(Host, Vec<VmDisk>, project::Overrides), InstallError> {
    let plain = project::open(&opts.profiles)?;
    let hosts = &plain.loaded.profiles.hosts;
    let host = hosts
        .get(&opts.host)
        .ok_or_else(|| crate::render::RenderError::UnknownHost {
            name: opts.host.clone(),
            known: plain.loaded.profiles.host_names(),
        })?
        .clone();
    let (vm_disks, overrides) = shape::shape(&host, &opts.shape)?;
    Ok((host, vm_disks, overrides))
}

/// The serve session of the run (the mirror proxies, progress reports, the installer's remote
/// syslog) and the phases its syslog showed.
struct Served {
    session: ServeSession,
    remote_phases: Arc<Mutex<Vec<Phase>>>,
}

impl Served {
    /// serve's port, as the VM reaches it through QEMU's user network.
    fn seen(&self) -> String {
        format!("10.0.2.2:{}", self.session.addr().port())
    }

    /// The remote syslog address on the installer's boot line.
    fn report_to(&self) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 2), self.session.addr().port())
    }
}

/// serve: the mirror proxy (+ harness overlay), the security proxy, progress, and the
/// installer's remote syslog (`netboot --report-to`, what `reinstall` follows on the real
/// box), received on the same port number over UDP, beside the serial copy.
fn start_serve(
    opts: &Options,
    rt: &tokio::runtime::Runtime,
    work: &Path,
    mirror: MirrorProxy,
    security: MirrorProxy,
) -> Result<Served, InstallError> {
    let tracker = Mutex::new(phases::Tracker::new(0));
    let remote_phases = Arc::new(Mutex::new(Vec::<Phase>::new()));
    let seen_by_udp = remote_phases.clone();
    let session = ServeSession::start(
        rt,
        SessionConfig {
            root: work,
            listen: "127.0.0.1:0".parse().expect("address"),
            serve_log: work.join("serve.log"),
            syslog_log: work.join("install-remote-syslog.log"),
            mirror: Some(mirror),
            security: Some(security),
            // The VM boots its kernel and initrd from files, not from serve; its reports
            // reach serve through QEMU's user network, from the loopback address.
            trust_progress: Some((opts.host.clone(), Ipv4Addr::LOCALHOST.into())),
        },
        move |line| {
            if let Ok(mut t) = tracker.lock() {
                if let Some(phases::Event::Phase(p)) = t.line(line) {
                    if let Ok(mut v) = seen_by_udp.lock() {
                        v.push(p);
                    }
                }
            }
        },
    )
    .map_err(|e| InstallError::Serve(e.to_string()))?;
    Ok(Served {
        session,
        remote_phases,
    })
}

/// What the test variant's build produced.
struct Built {
    /// The project as the VM sees it (proxied mirror, VM disks).
    project: project::Project,
    /// The host of that project.
    host: Host,
    /// `OUT/HOST/netboot`.
    netboot: PathBuf,
    /// The install NIC's MAC.
    mac: String,
}

/// The test variant of the host's files (published in `OUT/HOST/render`), then its netboot
/// artifacts (text frontend, the harness key when the harness suite is served).
fn build_test_variant(
    opts: &Options,
    client: &Client,
    sources: (&UdebSource, Option<&harness::Harness>),
    mut overrides: project::Overrides,
    served: &Served,
    work: &Path,
) -> Result<(Built, netboot::Summary), InstallError> {
    let (udeb_source, harness) = sources;
    let seen = served.seen();
    overrides.mirror = Some(harness::TestSources::mirror_url(&seen));
    let project = project::open_with(&opts.profiles, &overrides)?;
    let host = project.loaded.profiles.hosts[&opts.host].clone();
    let variant = TestVariant {
        console_params: vec!["console=ttyS0,115200".into()],
        progress_url: Some(format!("http://{seen}/progress/{}?run=test", opts.host)),
        resync_limit_kib: Some(10),
        mark_arrays_in_sync: true,
        syslog_tty: Some("/dev/ttyS1".into()),
        tamper: opts.tamper.clone(),
        harness_uid: HARNESS_UID.into(),
    };
    let rendered = render_hosts(
        &project,
        std::slice::from_ref(&opts.host),
        RenderOptions {
            locked: false,
            test: Some(variant),
            sources: Some(udeb_source.installer_sources(&seen)),
        },
    )?;
    let tree = &rendered.trees[&opts.host];
    let staged = output::stage(tree, &work.join("render")).map_err(RenderError::from)?;
    output::publish(vec![staged]).map_err(RenderError::from)?;
    let nb_dir = work.join("netboot");
    let mac = netboot::install_mac(&host)?.to_string();
    let (staged, summary) = netboot::stage(
        client,
        &host,
        tree,
        &nb_dir,
        &NetbootOptions {
            frontend: Some(Frontend::Text),
            supplement: true,
            base_url: format!("http://{seen}"),
            keyring_append: harness.map(|h| h.public_key.clone()),
            report_to: Some(served.report_to()),
        },
    )?;
    output::publish(vec![staged]).map_err(netboot::NetbootError::from)?;
    let built = Built {
        project,
        host,
        netboot: nb_dir,
        mac,
    };
    Ok((built, summary))
}

/// What every VM of the run shares, and the steps so far.
struct Runner<'a> {
    opts: &'a Options,
    log: &'a dyn Fn(&str),
    work: PathBuf,
    machine: Machine,
    accel: Accel,
    cpus: u32,
    steps: Vec<Step>,
}

impl Runner<'_> {
    /// A step whose verdict is `r`, logged as `label: …`.
    fn verdict(&mut self, kind: StepKind, name: String, label: &str, r: Result<String, String>) {
        (self.log)(&format!(
            "{label}: {}",
            match &r {
                Ok(s) => s.clone(),
                Err(e) => format!("FAIL {e}"),
            }
        ));
        self.steps.push(Step {
            name,
            kind,
            phase: None,
            passed: r.is_ok(),
            detail: r.unwrap_or_else(|e| e),
            seconds: 0.0,
        });
    }

    /// The install, followed phase by phase on the installer's syslog (ttyS1).
    fn install(&mut self, built: &Built, report_to: SocketAddrV4) -> Result<bool, InstallError> {
        let opts = self.opts;
        let syslog = self.work.join("install-syslog.log");
        let mut extra = self.machine.nic_args.clone();
        extra.extend(["-serial".to_string(), format!("file:{}", syslog.display())]);
        let spec = VmSpec {
            name: format!("install-{}", opts.host),
            accel: self.accel,
            cpus: self.cpus,
            memory_mib: opts.memory_mib,
            kernel: Some(built.netboot.join("linux")),
            initrd: Some(built.netboot.join("initrd.gz")),
            append: netboot::boot::kernel_args(&built.host, Frontend::Text, &built.mac)
                .with_reporting(report_to, &built.host)
                .to_string(),
            disks: self.machine.disks(None, false),
            console: self.work.join("install-console.log"),
            reboot: false,
            extra_args: extra,
        };
        (self.log)(&format!(
            "install: starting ({} MiB, {} vCPUs)",
            opts.memory_mib, self.cpus
        ));
        follow_install(
            &spec,
            &syslog,
            opts.install_timeout,
            self.log,
            &mut self.steps,
        )
    }

    /// What reached serve: every phase over the remote syslog, and the late command's
    /// `stage=done`.
    fn reports(&mut self, served: &Served) {
        let serial: Vec<Phase> = self.steps.iter().filter_map(|s| s.phase).collect();
        let udp = served
            .remote_phases
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default();
        let r = remote_report_check(&serial, &udp);
        self.verdict(
            StepKind::Report,
            "report/remote-syslog-phases".into(),
            "remote syslog",
            r,
        );
        let host = &self.opts.host;
        let done =
            served.session.progress().events().iter().any(|e| {
                e.host == *host && e.stage == crate::serve::STAGE_DONE && e.status == "ok"
            });
        self.steps.push(Step {
            name: "report/install-done".into(),
            kind: StepKind::Report,
            phase: None,
            passed: done,
            detail: if done {
                format!("serve received stage=done from {host}'s late command")
            } else {
                format!(
                    "serve received no stage=done from {host}'s late command (picaboot.progress= on the boot line)"
                )
            },
            seconds: 0.0,
        });
    }

    /// The SSDs' partition tables, read from the host, against the plan.
    fn partition_tables(&mut self, built: &Built) {
        let plan = &built.project.plans[&self.opts.host];
        for dp in plan.disks.iter().filter(|d| d.at_install) {
            let Some(img) = self.machine.image(&dp.id) else {
                continue;
            };
            let r = super::gpt_check::check(&img.path, dp);
            self.verdict(
                StepKind::PartitionTable,
                format!("gpt/{}", dp.id),
                &format!("gpt {}", dp.id),
                r,
            );
        }
    }

    /// One boot from disk (`leave_out`: the SSD removed), to the self-test's verdict.
    fn boot(&mut self, label: &str, leave_out: Option<&str>) -> Result<(), InstallError> {
        let opts = self.opts;
        let mode = match leave_out {
            None => "whole".to_string(),
            Some(d) => format!("degraded:{d}"),
        };
        let mut extra = self.machine.nic_args.clone();
        extra.extend([
            "-fw_cfg".to_string(),
            format!("name=opt/picaboot/mode,string={mode}"),
        ]);
        let spec = VmSpec {
            name: format!("boot-{label}-{}", opts.host),
            accel: self.accel,
            cpus: self.cpus,
            memory_mib: opts.memory_mib,
            kernel: None,
            initrd: None,
            append: String::new(),
            // Degraded boots start from the first boot's disks each time (snapshot).
            disks: self.machine.disks(leave_out, leave_out.is_some()),
            console: self.work.join(format!("boot-{label}-console.log")),
            reboot: false,
            extra_args: extra,
        };
        (self.log)(&format!("boot {label}: starting from disk"));
        let t = Instant::now();
        let mut vm = spec.start()?;
        let ended = wait_boot(&mut vm, opts.boot_timeout, BOOT_SILENCE);
        if ended == Outcome::Marker {
            vm.wait_exit(Duration::from_secs(120));
        }
        drop(vm);
        let console =
            String::from_utf8_lossy(&std::fs::read(&spec.console).unwrap_or_default()).into_owned();
        let secs = t.elapsed().as_secs_f64();
        let reached = boot_reached(&ended, &console, secs, opts.boot_timeout);
        (self.log)(&format!(
            "boot {label}: {}",
            match &reached {
                Ok(s) | Err(s) => s,
            }
        ));
        self.steps.push(Step {
            name: format!("boot-{label}/reached-self-test"),
            kind: StepKind::Boot,
            phase: None,
            passed: reached.is_ok(),
            detail: reached.unwrap_or_else(|e| e),
            seconds: secs,
        });
        self.self_test_steps(label, &Report::parse(&console), ended == Outcome::Marker);
        Ok(())
    }

    /// The self-test's checks of one boot as steps (and its failures not among its checks,
    /// when it finished).
    fn self_test_steps(&mut self, label: &str, report: &Report, finished: bool) {
        let mut steps = self_test_steps(label, report, finished);
        let failed = steps.iter().filter(|s| !s.passed).count();
        self.steps.append(&mut steps);
        (self.log)(&format!(
            "boot {label}: {} checks reported, {failed} failed step{}",
            report.checks.len(),
            if failed == 1 { "" } else { "s" }
        ));
    }
}

/// Whether a boot reached the end of the self-test, and what was seen.
fn boot_reached(
    ended: &Outcome,
    console: &str,
    secs: f64,
    limit: Duration,
) -> Result<String, String> {
    match ended {
        Outcome::Marker => Ok(format!("self-test finished after {secs:.0} s")),
        Outcome::Exited(why) => Err(format!(
            "QEMU exited before the self-test finished: {why}; last console lines: {}",
            tail(console, 5)
        )),
        Outcome::TimedOut if console.trim().is_empty() => Err(format!(
            "nothing booted: the serial console stayed empty for {} s (no boot loader \
             on the disks present: GRUB, which writes to the serial console, never started)",
            BOOT_SILENCE.as_secs()
        )),
        Outcome::TimedOut => Err(format!(
            "no PICABOOT-DONE within {} s; last console lines: {}",
            limit.as_secs(),
            tail(console, 5)
        )),
    }
}

/// The Debian archive client of `opts` (its mirror, keyring and cache; signatures checked) and
/// the async runtime serve runs on.
pub(crate) fn client_and_runtime(
    opts: &Options,
) -> Result<(Client, tokio::runtime::Runtime), InstallError> {
    let client = Client::new(ClientOptions {
        mirror: opts.mirror.clone(),
        keyring: opts.keyring.clone(),
        insecure: false,
        cache_dir: opts.cache_dir.clone(),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(io("start the async runtime", Path::new("-")))?;
    Ok((client, rt))
}

/// Runs the scenario; `log` receives one line per event. Its phases, in order: the work
/// directory, the host shaped as a VM, the udebs, serve, the test variant's render and
/// netboot artifacts, the VM's disks and NICs, the install, what reached serve, the
/// partition tables, the boots from disk.
pub fn run(opts: &Options, log: &dyn Fn(&str)) -> Result<RunOutcome, InstallError> {
    let start = Instant::now();
    check_tamper(opts)?;
    let work = fresh_work_dir(opts)?;
    let (host0, vm_disks, overrides) = shape_host(opts)?;

    // Which udebs: the signed index, or (flag) the harness suite.
    let (client, rt) = client_and_runtime(opts)?;
    let harness::TestSources {
        udeb_source,
        harness,
        mirror,
        security,
    } = harness::test_sources(
        &client,
        &rt,
        &opts.mirror,
        &opts.security,
        &host0.install.suite,
        opts.allow_unverified_udebs,
    )?;
    log(&format!("udebs: {}", udeb_source.describe()));

    let mut served = start_serve(opts, &rt, &work, mirror, security)?;
    let port = served.session.addr().port();
    log(&format!(
        "serve: mirror proxy on 127.0.0.1:{port} (the VM sees 10.0.2.2:{port}), installer syslog on udp"
    ));
    let (built, summary) = build_test_variant(
        opts,
        &client,
        (&udeb_source, harness.as_ref()),
        overrides,
        &served,
        &work,
    )?;
    log(&format!(
        "netboot: {} (kernel {}), test variant with the self-test",
        summary.installer, summary.kernel_version
    ));

    let machine = Machine::new(&work, &built.host, &vm_disks, opts.keep_disks)?;
    log(&format!("VM disks: {}", machine.describe()));
    let (accel, why) = Accel::detect(&built.netboot.join("linux"));
    log(&format!("accelerator: {why}"));
    let mut runner = Runner {
        opts,
        log,
        work,
        machine,
        accel,
        cpus: if accel == Accel::Kvm { opts.cpus } else { 1 },
        steps: Vec::new(),
    };
    let installed = runner.install(&built, served.report_to())?;
    served.session.close_syslog();
    if installed {
        runner.reports(&served);
        runner.partition_tables(&built);
        runner.boot("whole", None)?;
        if opts.degraded {
            for b in runner.machine.boot_order.clone() {
                runner.boot(&format!("degraded-{b}"), Some(&b))?;
            }
        }
    }
    served.session.stop();
    Ok(RunOutcome {
        host: opts.host.clone(),
        accel: why,
        udeb_source,
        steps: runner.steps,
        screenshots: Vec::new(),
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The self-test's checks of one boot as steps, and, when it finished, its failures that are
/// not among its checks.
fn self_test_steps(label: &str, report: &Report, finished: bool) -> Vec<Step> {
    let extra = report
        .failures()
        .into_iter()
        .filter(|f| finished && !report.checks.contains(f));
    report
        .checks
        .iter()
        .cloned()
        .chain(extra)
        .map(|c| Step {
            name: format!("boot-{label}/{}", c.name),
            kind: StepKind::Boot,
            phase: None,
            passed: c.passed,
            detail: c.detail,
            seconds: 0.0,
        })
        .collect()
}

/// The phases the installer's remote syslog showed against those of its serial copy: every
/// phase from partitioning on must have come over UDP, in the same order (the ones before
/// the network is up cannot).
fn remote_report_check(serial: &[Phase], udp: &[Phase]) -> Result<String, String> {
    let names = |v: &[Phase]| v.iter().map(|p| p.name()).collect::<Vec<_>>();
    let from = serial
        .iter()
        .position(|p| *p == Phase::Partitioning)
        .ok_or_else(|| {
            format!(
                "the serial syslog showed no partitioning phase: {:?}",
                names(serial)
            )
        })?;
    let want = &serial[from..];
    let got: Vec<Phase> = udp
        .iter()
        .copied()
        .skip_while(|p| *p != Phase::Partitioning)
        .collect();
    if got != want {
        return Err(format!(
            "phases over UDP {:?}, on the serial syslog {:?}",
            names(udp),
            names(serial)
        ));
    }
    Ok(format!(
        "{} phases over UDP, as on the serial syslog: {}",
        udp.len(),
        names(udp).join(", ")
    ))
}

/// Waits for the self-test's end marker; a console that stays empty for `silence` means
/// nothing booted (no boot loader on the disks left): killed and reported as timed out.
fn wait_boot(vm: &mut crate::qemu::Vm, limit: Duration, silence: Duration) -> Outcome {
    let t = Instant::now();
    loop {
        let text = vm.console();
        if text.contains("PICABOOT-DONE") {
            return Outcome::Marker;
        }
        if let Some(why) = vm.exited() {
            return if vm.console().contains("PICABOOT-DONE") {
                Outcome::Marker
            } else {
                Outcome::Exited(why)
            };
        }
        if t.elapsed() > limit || (t.elapsed() > silence && text.trim().is_empty()) {
            vm.kill();
            return Outcome::TimedOut;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// How long a boot's serial console may stay empty before the boot counts as "nothing
/// booted" (GRUB writes to it within seconds of the firmware handing over).
const BOOT_SILENCE: Duration = Duration::from_secs(300);

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// Runs the install VM to its end (the installer reboots; `-no-reboot` makes QEMU exit),
/// recording each phase with its time; false when it failed (the failure is a step).
fn follow_install(
    spec: &VmSpec,
    syslog: &Path,
    limit: Duration,
    log: &dyn Fn(&str),
    steps: &mut Vec<Step>,
) -> Result<bool, InstallError> {
    let mut vm = spec.start()?;
    let t0 = Instant::now();
    let mut current: (Phase, Instant) = (Phase::BootToNetwork, t0);
    let mut seen = 0usize;
    let mut finished_phase = false;
    let mut failure: Option<String> = None;
    let close =
        |phase: Phase, since: Instant, steps: &mut Vec<Step>, passed: bool, detail: String| {
            let secs = since.elapsed().as_secs_f64();
            log(&format!(
                "install: {phase} {} in {:.0} s ({:.0} s elapsed)",
                if passed { "done" } else { "FAILED" },
                secs,
                t0.elapsed().as_secs_f64()
            ));
            steps.push(Step {
                name: format!("install/{phase}"),
                kind: StepKind::Install,
                phase: Some(phase),
                passed,
                detail,
                seconds: secs,
            });
        };
    loop {
        let text = String::from_utf8_lossy(&std::fs::read(syslog).unwrap_or_default()).into_owned();
        let start = seen.min(text.len());
        let complete = text[start..]
            .rfind('\n')
            .map(|i| start + i + 1)
            .unwrap_or(start);
        for line in text[start..complete].lines() {
            if let Some(p) = phases::phase_started(line) {
                if p != current.0 {
                    close(current.0, current.1, steps, true, "ok".into());
                    log(&format!("install: {p} ..."));
                    current = (p, Instant::now());
                    if p == Phase::FinishInstall {
                        finished_phase = true;
                    }
                }
            }
            if failure.is_none() {
                failure = phases::failure(line);
            }
        }
        seen = complete;
        if let Some(f) = &failure {
            vm.kill();
            close(
                current.0,
                current.1,
                steps,
                false,
                format!("{f}; last syslog lines: {}", tail(&text, 8)),
            );
            return Ok(false);
        }
        if let Some(why) = vm.exited() {
            if finished_phase {
                close(
                    current.0,
                    current.1,
                    steps,
                    true,
                    "the installer finished and rebooted".into(),
                );
                return Ok(true);
            }
            close(
                current.0,
                current.1,
                steps,
                false,
                format!(
                    "QEMU exited during {}: {why}; last syslog lines: {}",
                    current.0,
                    tail(&text, 8)
                ),
            );
            return Ok(false);
        }
        if t0.elapsed() > limit {
            vm.kill();
            close(
                current.0,
                current.1,
                steps,
                false,
                format!(
                    "no end within {} s; last syslog lines: {}",
                    limit.as_secs(),
                    tail(&text, 8)
                ),
            );
            return Ok(false);
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

impl crate::exit_class::ExitClass for InstallError {
    fn exit_class(&self) -> crate::exit_class::Class {
        use crate::exit_class::Class;
        match self {
            InstallError::Profile(e) => e.exit_class(),
            InstallError::Shape(_) | InstallError::Refused(_) => Class::User,
            InstallError::Harness(e) => e.exit_class(),
            InstallError::Render(e) => e.exit_class(),
            InstallError::Netboot(e) => e.exit_class(),
            InstallError::Exec(e) => e.exit_class(),
            InstallError::Serve(_) | InstallError::Io { .. } => Class::Env,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome_from(console: &str) -> RunOutcome {
        let report = Report::parse(console);
        let mut steps = vec![Step {
            name: "install/partitioning".into(),
            kind: StepKind::Install,
            phase: Some(Phase::Partitioning),
            passed: true,
            detail: "ok".into(),
            seconds: 530.0,
        }];
        for c in &report.checks {
            steps.push(Step {
                name: format!("boot-degraded-ssd0/{}", c.name),
                kind: StepKind::Boot,
                phase: None,
                passed: c.passed,
                detail: c.detail.clone(),
                seconds: 0.0,
            });
        }
        RunOutcome {
            host: "alice".into(),
            accel: "TCG".into(),
            udeb_source: UdebSource::Signed {
                sha256: "ab".into(),
            },
            steps,
            screenshots: Vec::new(),
            seconds: 1.0,
        }
    }

    #[test]
    fn every_phase_from_partitioning_on_must_come_over_udp() {
        let serial = Phase::ALL.to_vec();
        let all = Phase::ALL;
        assert!(remote_report_check(&serial, &all[1..]).is_ok());
        let mut lost = all[1..].to_vec();
        lost.retain(|p| *p != Phase::Grub);
        assert!(remote_report_check(&serial, &lost).is_err());
        assert!(remote_report_check(&serial, &[]).is_err());
        assert!(
            remote_report_check(&serial[..2], &all[..2]).is_err(),
            "no partitioning"
        );
    }

    #[test]
    fn failing_self_test_output_fails_and_names_each_check() {
        // What the self-test prints when GRUB is on one SSD only and a file was altered.
        let console = "\u{1b}[0mSELFTEST\r\nPICABOOT-CHECK md-md0 PASS 1/2 up (want 1): clean, degraded\n\
PICABOOT-CHECK grub-ssd1 FAIL /dev/disk/by-id/ata-X: MBR GRUB marks=0, partition 1 non-zero bytes=0\n\
PICABOOT-CHECK file:/etc/hosts FAIL content differs from the rendered file (sha256 1, rendered 2)\n\
PICABOOT-DONE rc=2\n";
        let o = outcome_from(console);
        let failed: Vec<&str> = o.failures().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            failed,
            [
                "boot-degraded-ssd0/grub-ssd1",
                "boot-degraded-ssd0/file:/etc/hosts"
            ]
        );
        let r = Report::parse(console);
        assert_eq!(r.done_rc, Some(2));
        assert!(!r.passed());
    }

    #[test]
    fn junit_is_xml_whatever_the_console_held() {
        let o =
            outcome_from("PICABOOT-CHECK x FAIL bad \u{1b}[31m<&>\"\u{0}\r\nPICABOOT-DONE rc=1\n");
        let x = o.junit();
        assert!(x.contains("tests=\"2\" failures=\"1\""), "{x}");
        assert!(x.contains("&lt;&amp;&gt;&quot;"), "{x}");
        assert!(!x.chars().any(|c| (c as u32) < 0x20 && c != '\n'), "{x:?}");
        assert!(x.contains("name=\"udeb-source\""));
    }
}
