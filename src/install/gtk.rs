//! `picaboot test install HOST --frontend gtk`: the proof of the graphical installer that ships.
//!
//! The artifacts are those `reinstall` writes for a box served by picaboot: the production
//! render (no test variant: no serial console, no self-test) and `netboot`'s `linux` +
//! `initrd.gz` of the host's own frontend (gtk), reporting to `serve` (`--report-to`). Where
//! this run differs from the real box it differs as the text proof does: the mirror and the
//! security archive through the test's proxy and, when the mirror's udeb index is stale and
//! `--allow-unverified-udebs` is given, the harness udeb suite and its key in the initrd's
//! keyring. The VM (the box's disks, scaled; its MACs) has a standard VGA card (the
//! installer's `bochs` DRM framebuffer) and a QMP socket; its kernel line is the boot entry's
//! plus `DEBCONF_DEBUG=developer`, which only makes cdebconf log each question to the syslog
//! (and `norandmaps` under TCG). The run follows the installer's remote syslog, takes a
//! screenshot (QMP `screendump`, PNG) at each phase and when the syslog goes quiet, and fails
//! when it stays quiet past the limit, naming the last question shown (a question in gtk waits
//! on a screen no serial log sees). It stops once the phase after `stop_after` has begun.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::harness::{self, UdebSource};
use super::machine::Machine;
use super::phases::{self, Phase};
use super::question::Questions;
use super::scenario::{
    client_and_runtime, fresh_work_dir, io, shape_host, InstallError, Options, RunOutcome,
    Screenshot, Step, StepKind,
};
use crate::debian::Client;
use crate::netboot::{self, NetbootOptions};
use crate::output::Tree;
use crate::profile::Frontend;
use crate::qemu::qmp::{png_size, Qmp};
use crate::qemu::vm::{Vm, VmSpec};
use crate::qemu::Accel;
use crate::render::{render_hosts, RenderError, RenderOptions};
use crate::serve::session::{ServeSession, SessionConfig};
use crate::{output, project};

/// What the gtk proof adds to [`Options`].
#[derive(Debug, Clone)]
pub struct GtkOptions {
    /// TEST ONLY: remove this question's answer from the rendered preseed (proves that a
    /// question stops the run, named, with its screenshot).
    pub omit_answer: Option<String>,
    /// A screenshot when the syslog has been quiet this long.
    pub quiet_shot: Duration,
    /// The run fails when the syslog stays quiet this long (a question waits on the screen).
    pub quiet_limit: Duration,
    /// The limit for the first syslog line (the installer boots and brings its network up).
    pub first_line_limit: Duration,
    /// The run ends (passed) when the phase after this one begins.
    pub stop_after: Phase,
}

/// The kernel parameter that makes cdebconf log each question and its answer to the syslog.
pub const DEBCONF_DEBUG: &str = "DEBCONF_DEBUG=developer";

/// The preseed without any answer to `question` (a `d-i question type value` line and its
/// `\` continuations); an error when the preseed has none.
pub fn omit_answer(preseed: &str, question: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut removed = 0;
    let mut skipping = false;
    for line in preseed.split_inclusive('\n') {
        let body = line.trim_end();
        if !skipping {
            let mut w = body.split_whitespace();
            let owner = w.next().unwrap_or("");
            skipping = !owner.starts_with('#') && w.next() == Some(question);
            if skipping {
                removed += 1;
            } else {
                out.push_str(line);
                continue;
            }
        }
        skipping = body.ends_with('\\');
    }
    if removed == 0 {
        return Err(format!(
            "--omit-answer {question}: the rendered preseed.cfg answers no such question"
        ));
    }
    Ok(out)
}

/// `tree` with `question`'s answer removed from its preseed.cfg.
fn without_answer(tree: &Tree, question: &str) -> Result<Tree, InstallError> {
    let f = tree
        .get("preseed.cfg")
        .ok_or_else(|| InstallError::Refused("the render has no preseed.cfg".into()))?;
    let text = String::from_utf8_lossy(&f.bytes);
    let edited = omit_answer(&text, question).map_err(InstallError::Refused)?;
    let mut t = tree.clone();
    t.add("preseed.cfg", edited, f.mode)
        .map_err(RenderError::from)?;
    Ok(t)
}

/// The artifacts booted, and what the VM needs of the host.
struct Built {
    netboot: PathBuf,
    append: String,
    host: crate::profile::Host,
    summary: netboot::Summary,
}

/// The production render and netboot artifacts of the host's own frontend, as `reinstall`
/// builds them for a box served by picaboot (its mirror through serve's proxy, the harness
/// suite when used), reporting to serve.
fn build_production(
    opts: &Options,
    gtk: &GtkOptions,
    client: &Client,
    sources: (&UdebSource, Option<&harness::Harness>),
    mut overrides: project::Overrides,
    seen: std::net::SocketAddrV4,
    work: &Path,
) -> Result<Built, InstallError> {
    let (udeb_source, harness) = sources;
    let seen_s = seen.to_string();
    overrides.mirror = Some(harness::TestSources::mirror_url(&seen_s));
    let project = project::open_with(&opts.profiles, &overrides)?;
    let host = project.loaded.profiles.hosts[&opts.host].clone();
    if host.install.frontend != Frontend::Gtk {
        return Err(InstallError::Refused(format!(
            "host {}: its profile's installer frontend is {:?}, not gtk: the gtk proof proves \
             the artifacts netboot writes for the box",
            opts.host, host.install.frontend
        )));
    }
    let render = RenderOptions {
        sources: Some(udeb_source.installer_sources(&seen_s)),
        ..Default::default()
    };
    let rendered = render_hosts(&project, std::slice::from_ref(&opts.host), render)?;
    let mut tree = rendered.trees[&opts.host].clone();
    if let Some(q) = &gtk.omit_answer {
        tree = without_answer(&tree, q)?;
    }
    let staged = output::stage(&tree, &work.join("render")).map_err(RenderError::from)?;
    output::publish(vec![staged]).map_err(RenderError::from)?;
    let nb_dir = work.join("netboot");
    let nb = NetbootOptions {
        frontend: None,
        supplement: true,
        base_url: format!("http://{seen}"),
        keyring_append: harness.map(|h| h.public_key.clone()),
        report_to: Some(seen),
    };
    let (staged, summary) = netboot::stage(client, &host, &tree, &nb_dir, &nb)?;
    output::publish(vec![staged]).map_err(netboot::NetbootError::from)?;
    let mac = netboot::install_mac(&host)?;
    // The words of the artifacts' boot entries (boot.ipxe), as netboot::stage made them.
    let entry = netboot::boot::kernel_args(&host, summary.frontend, mac)
        .with_reporting(seen, &host)
        .to_string();
    let append = netboot::boot::before_separator(&entry, &[DEBCONF_DEBUG]);
    Ok(Built {
        netboot: nb_dir,
        append,
        host,
        summary,
    })
}

/// Runs the gtk proof; `log` receives one line per event.
pub fn run(
    opts: &Options,
    gtk: &GtkOptions,
    log: &dyn Fn(&str),
) -> Result<RunOutcome, InstallError> {
    let start = Instant::now();
    let work = fresh_work_dir(opts)?;
    let (_, vm_disks, overrides) = shape_host(opts)?;
    let (client, rt) = client_and_runtime(opts)?;
    let suite = project::open(&opts.profiles)?.loaded.profiles.hosts[&opts.host]
        .install
        .suite
        .clone();
    let sources = harness::test_sources(
        &client,
        &rt,
        &opts.mirror,
        &opts.security,
        &suite,
        opts.allow_unverified_udebs,
    )?;
    log(&format!("udebs: {}", sources.udeb_source.describe()));
    let (tx, rx) = mpsc::channel::<String>();
    let tx = std::sync::Mutex::new(tx);
    let session = ServeSession::start(
        &rt,
        SessionConfig {
            root: &work,
            listen: "127.0.0.1:0".parse().expect("address"),
            serve_log: work.join("serve.log"),
            syslog_log: work.join("install-remote-syslog.log"),
            mirror: Some(sources.mirror),
            security: Some(sources.security),
            trust_progress: Some((opts.host.clone(), std::net::Ipv4Addr::LOCALHOST.into())),
        },
        move |line| {
            if let Ok(t) = tx.lock() {
                let _ = t.send(line.to_string());
            }
        },
    )
    .map_err(|e| InstallError::Serve(e.to_string()))?;
    let seen =
        std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(10, 0, 2, 2), session.addr().port());
    let built = build_production(
        opts,
        gtk,
        &client,
        (&sources.udeb_source, sources.harness.as_ref()),
        overrides,
        seen,
        &work,
    )?;
    log(&format!(
        "netboot: {} ({:?}, kernel {}), production artifacts (the box's), reporting to {seen}",
        built.summary.installer, built.summary.frontend, built.summary.kernel_version
    ));
    let machine = Machine::new(&work, &built.host, &vm_disks, opts.keep_disks)?;
    log(&format!("VM disks: {}", machine.describe()));
    let (accel, why) = Accel::detect(&built.netboot.join("linux"));
    log(&format!("accelerator: {why}"));
    let spec = vm_spec(opts, &work, &built, &machine, accel);
    let (steps, screenshots) = follow(&spec, &work, gtk, opts.install_timeout, rx, log)?;
    session.stop();
    Ok(RunOutcome {
        host: opts.host.clone(),
        accel: why,
        udeb_source: sources.udeb_source,
        steps,
        screenshots,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The install VM: the box's disks and NICs, a standard VGA card, a QMP socket.
fn vm_spec(opts: &Options, work: &Path, built: &Built, m: &Machine, accel: Accel) -> VmSpec {
    let mut extra = m.nic_args.clone();
    extra.extend(
        [
            "-device",
            "VGA",
            "-qmp",
            &format!("unix:{},server=on,wait=off", qmp_path(work).display()),
        ]
        .map(String::from),
    );
    VmSpec {
        name: format!("install-gtk-{}", opts.host),
        accel,
        cpus: if accel == Accel::Kvm { opts.cpus } else { 1 },
        memory_mib: opts.memory_mib,
        kernel: Some(built.netboot.join("linux")),
        initrd: Some(built.netboot.join("initrd.gz")),
        append: built.append.clone(),
        disks: m.disks(None, false),
        console: work.join("install-console.log"),
        reboot: false,
        extra_args: extra,
    }
}

fn qmp_path(work: &Path) -> PathBuf {
    work.join("qmp.sock")
}

/// The screenshots of a run, numbered in order under `OUT/HOST/screens/`.
struct Shots {
    dir: PathBuf,
    taken: Vec<Screenshot>,
    failed: Vec<String>,
}

impl Shots {
    /// A screenshot labelled `label`; its path relative to the run's directory, or `None`
    /// (the failure is recorded) when QEMU could not take it or wrote no PNG.
    fn take(&mut self, qmp: &mut Option<Qmp>, label: &str, at: f64) -> Option<String> {
        let name = format!("{:02}-{label}.png", self.taken.len() + 1);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let r = match qmp.as_mut() {
            None => Err("no QMP connection".to_string()),
            Some(q) => q.screendump_png(&tmp).map_err(|e| e.to_string()),
        }
        .and_then(|_| std::fs::read(&tmp).map_err(|e| format!("read {}: {e}", tmp.display())))
        .and_then(|b| {
            png_size(&b)
                .map(|s| (s, b.len()))
                .ok_or_else(|| "QEMU wrote no PNG".to_string())
        })
        .and_then(|r| {
            std::fs::rename(&tmp, self.dir.join(&name))
                .map(|_| r)
                .map_err(|e| e.to_string())
        });
        match r {
            Ok(((width, height), bytes)) => {
                let file = format!("screens/{name}");
                self.taken.push(Screenshot {
                    file: file.clone(),
                    label: label.to_string(),
                    seconds: at,
                    width,
                    height,
                    bytes: bytes as u64,
                });
                Some(file)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                self.failed.push(format!("{label}: {e}"));
                None
            }
        }
    }
}

/// The followed install's state.
struct Follow<'a> {
    log: &'a dyn Fn(&str),
    qmp: Option<Qmp>,
    shots: Shots,
    t0: Instant,
    /// The current phase, when it began, and the screenshot taken then.
    phase: (Phase, Instant, Option<String>),
    step: String,
    last_line: Option<Instant>,
    quiet_shot_taken: bool,
    longest_quiet: Duration,
    questions: Questions,
    tail: VecDeque<String>,
    /// The next debconf answer may hold a password (it answers a command about one).
    hide_reply: bool,
    steps: Vec<Step>,
}

/// How one pass of the follow loop ended the run, if it did.
enum End {
    Passed(String),
    Failed(String),
}

impl<'a> Follow<'a> {
    /// A follow that began at `t0`, with its QMP connection (or why there is none).
    fn new(
        log: &'a dyn Fn(&str),
        qmp: Result<Qmp, crate::qemu::qmp::QmpError>,
        dir: PathBuf,
        t0: Instant,
    ) -> Self {
        let failed: Vec<String> = qmp
            .as_ref()
            .err()
            .map(|e| e.to_string())
            .into_iter()
            .collect();
        Follow {
            log,
            qmp: qmp.ok(),
            shots: Shots {
                dir,
                taken: Vec::new(),
                failed,
            },
            t0,
            phase: (Phase::BootToNetwork, t0, None),
            step: String::new(),
            last_line: None,
            quiet_shot_taken: false,
            longest_quiet: Duration::ZERO,
            questions: Questions::default(),
            tail: VecDeque::new(),
            hide_reply: false,
            steps: Vec::new(),
        }
    }

    fn at(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    fn shoot(&mut self, label: &str) -> Option<String> {
        let at = self.at();
        let r = self.shots.take(&mut self.qmp, label, at);
        (self.log)(&format!(
            "screenshot {label}: {}",
            r.as_deref().unwrap_or("FAILED")
        ));
        r
    }

    fn close_phase(&mut self, passed: bool, detail: String) {
        let (p, since) = (self.phase.0, self.phase.1);
        let detail = match &self.phase.2 {
            Some(f) => format!("{detail}; screenshot at its start {f}"),
            None => detail,
        };
        let secs = since.elapsed().as_secs_f64();
        (self.log)(&format!(
            "install: {p} {} in {secs:.0} s ({:.0} s elapsed)",
            if passed { "done" } else { "FAILED" },
            self.at()
        ));
        self.steps.push(Step {
            name: format!("install/{p}"),
            kind: StepKind::Install,
            phase: Some(p),
            passed,
            detail,
            seconds: secs,
        });
    }

    /// One syslog line: the longest quiet so far, questions, the step and phase.
    fn line(&mut self, line: &str, stop_after: Phase) -> Option<End> {
        let now = Instant::now();
        match self.last_line {
            Some(l) => self.longest_quiet = self.longest_quiet.max(now - l),
            None => {
                (self.log)(&format!(
                    "installer syslog: first line after {:.0} s",
                    self.at()
                ));
                self.phase.2 = self.shoot("first-syslog-line");
            }
        }
        self.last_line = Some(now);
        self.quiet_shot_taken = false;
        self.questions.line(line);
        if self.tail.len() == 8 {
            self.tail.pop_front();
        }
        // No secrets in reports: debconf's debugging shows a password's answer in a SET
        // command and in the answer to a GET (`<-- 0 $6$…`): both are left out of the tail.
        let is_reply = line.contains("<-- ");
        let secret_reply = is_reply && self.hide_reply;
        if line.contains("--> ") {
            self.hide_reply = line.contains("password");
        } else if is_reply {
            self.hide_reply = false;
        }
        if !line.contains("password") && !secret_reply {
            self.tail.push_back(line.to_string());
        }
        if let Some(i) = line.find("Menu item '") {
            let rest = &line[i + 11..];
            self.step = rest[..rest.find('\'').unwrap_or(rest.len())].to_string();
        }
        if let Some(f) = phases::failure(line) {
            let shot = self.shoot("failure");
            return Some(End::Failed(format!("{f}{}", shot_note(shot))));
        }
        let p = phases::phase_started(line)?;
        if p == self.phase.0 {
            return None;
        }
        let shot = self.shoot(p.name());
        self.close_phase(true, "ok".into());
        (self.log)(&format!("install: {p} ..."));
        self.phase = (p, Instant::now(), shot);
        (p > stop_after)
            .then(|| End::Passed(format!("began; the run stops here (after {stop_after})")))
    }

    /// Quiet syslog: a screenshot after `quiet_shot`, failure after the limit.
    fn quiet(&mut self, gtk: &GtkOptions) -> Option<End> {
        let (since, limit) = match self.last_line {
            Some(l) => (l.elapsed(), gtk.quiet_limit),
            None => (self.t0.elapsed(), gtk.first_line_limit),
        };
        if since >= gtk.quiet_shot && !self.quiet_shot_taken && self.last_line.is_some() {
            self.quiet_shot_taken = true;
            self.shoot(&format!("quiet-{}", self.phase.0));
        }
        if since < limit {
            return None;
        }
        let shot = self.shoot("stopped");
        let what = match (self.questions.current(), self.questions.inputs()) {
            (Some(q), _) if q.contains(", ") => {
                format!("the installer waits at debconf questions {q}")
            }
            (Some(q), _) => format!("the installer waits at debconf question {q}"),
            (None, 0) if self.last_line.is_none() => {
                "no syslog line arrived: the installer never reached its network".into()
            }
            (None, _) => "no debconf question in the syslog".into(),
        };
        Some(End::Failed(format!(
            "{what} (installer step {}): the syslog was quiet for {} s{}; last syslog lines: {}",
            if self.step.is_empty() {
                "-"
            } else {
                &self.step
            },
            since.as_secs(),
            shot_note(shot),
            self.tail.iter().cloned().collect::<Vec<_>>().join(" | ")
        )))
    }
}

fn shot_note(shot: Option<String>) -> String {
    match shot {
        Some(f) => format!("; screenshot {f}"),
        None => "; screenshot FAILED".into(),
    }
}

/// Boots the installer and follows it through its remote syslog until the phase after
/// `stop_after` begins (passed), a failure, a quiet syslog past the limit, QEMU's exit or
/// `limit`; returns the steps and the screenshots.
fn follow(
    spec: &VmSpec,
    work: &Path,
    gtk: &GtkOptions,
    limit: Duration,
    rx: Receiver<String>,
    log: &dyn Fn(&str),
) -> Result<(Vec<Step>, Vec<Screenshot>), InstallError> {
    let dir = work.join("screens");
    std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
    log(&format!(
        "install (gtk): starting ({} MiB), stops when the phase after {} begins; kernel line: {}",
        spec.memory_mib, gtk.stop_after, spec.append
    ));
    let mut vm = spec.start()?;
    let t0 = Instant::now();
    let qmp = Qmp::connect(
        &qmp_path(work),
        Duration::from_secs(30),
        Duration::from_secs(60),
    );
    let mut f = Follow::new(log, qmp, dir, t0);
    let end = follow_loop(&mut f, &mut vm, gtk, limit, &rx);
    vm.kill();
    let _ = std::fs::remove_file(qmp_path(work));
    match end {
        End::Passed(why) => f.close_phase(true, why),
        End::Failed(why) => f.close_phase(false, why),
    }
    let mut steps = std::mem::take(&mut f.steps);
    log(&format!(
        "install (gtk): longest quiet syslog stretch {} s; {} debconf INPUT commands seen",
        f.longest_quiet.as_secs(),
        f.questions.inputs()
    ));
    steps.push(screenshot_step(&f.shots));
    Ok((steps, f.shots.taken))
}

fn follow_loop(
    f: &mut Follow<'_>,
    vm: &mut Vm,
    gtk: &GtkOptions,
    limit: Duration,
    rx: &Receiver<String>,
) -> End {
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => {
                if let Some(end) = f.line(&line, gtk.stop_after) {
                    return end;
                }
                continue;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return End::Failed("serve's syslog receiver stopped".into())
            }
        }
        if let Some(end) = f.quiet(gtk) {
            return end;
        }
        if let Some(why) = vm.exited() {
            return End::Failed(format!("QEMU exited during {}: {why}", f.phase.0));
        }
        if f.t0.elapsed() > limit {
            let shot = f.shoot("timeout");
            return End::Failed(format!(
                "not past {} within {} s{}",
                gtk.stop_after,
                limit.as_secs(),
                shot_note(shot)
            ));
        }
    }
}

/// The step that says which screenshots were taken (fails when one could not be).
fn screenshot_step(shots: &Shots) -> Step {
    let files: Vec<String> = shots
        .taken
        .iter()
        .map(|s| format!("{} ({}x{}, {} bytes)", s.file, s.width, s.height, s.bytes))
        .collect();
    let passed = shots.failed.is_empty() && !shots.taken.is_empty();
    Step {
        name: "screenshots".into(),
        kind: StepKind::Report,
        phase: None,
        passed,
        detail: if passed {
            format!("{} screenshots: {}", files.len(), files.join(", "))
        } else {
            format!(
                "screenshots failed: {}; taken: {}",
                shots.failed.join("; "),
                files.join(", ")
            )
        },
        seconds: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omitting_an_answer_removes_its_line_and_continuations_only() {
        let p = "# passwd/root-password-crypted in a comment\n\
d-i passwd/root-login boolean true\n\
d-i passwd/root-password-crypted password $6$x\n\
d-i partman/early_command string \\\n  a ; \\\n  b\n\
d-i partman/confirm boolean true\n";
        let out = omit_answer(p, "passwd/root-password-crypted").unwrap();
        assert_eq!(
            out,
            p.replace("d-i passwd/root-password-crypted password $6$x\n", "")
        );
        let out = omit_answer(p, "partman/early_command").unwrap();
        assert_eq!(
            out,
            "# passwd/root-password-crypted in a comment\n\
d-i passwd/root-login boolean true\n\
d-i passwd/root-password-crypted password $6$x\n\
d-i partman/confirm boolean true\n"
        );
        let e = omit_answer(p, "passwd/root-password").unwrap_err();
        assert!(e.contains("answers no such question"), "{e}");
    }

    #[test]
    fn the_debconf_debug_parameter_stays_in_the_installer_boot() {
        let a = netboot::boot::before_separator("auto=true log_port=1 ---", &[DEBCONF_DEBUG]);
        assert_eq!(a, "auto=true log_port=1 DEBCONF_DEBUG=developer ---");
    }

    fn opts(limit: Duration) -> GtkOptions {
        GtkOptions {
            omit_answer: None,
            quiet_shot: Duration::from_secs(3600),
            quiet_limit: limit,
            first_line_limit: limit,
            stop_after: Phase::Partitioning,
        }
    }

    fn no_qmp() -> Result<Qmp, crate::qemu::qmp::QmpError> {
        Err(crate::qemu::qmp::QmpError::Protocol(
            "none in this test".into(),
            "-".into(),
        ))
    }

    #[test]
    fn the_run_passes_when_the_phase_after_stop_after_begins() {
        let dir = tempfile::tempdir().unwrap();
        let log = |_: &str| {};
        let mut f = Follow::new(&log, no_qmp(), dir.path().into(), Instant::now());
        let g = opts(Duration::from_secs(3600));
        let mut ends = Vec::new();
        for item in [
            "netcfg",
            "download-installer",
            "partman-base",
            "bootstrap-base",
        ] {
            let line = format!("main-menu[1]: INFO: Menu item '{item}' selected");
            ends.push(
                f.line(&line, g.stop_after)
                    .map(|e| matches!(e, End::Passed(_))),
            );
        }
        assert_eq!(ends, [None, None, None, Some(true)]);
        let names: Vec<&str> = f.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "install/boot-to-network",
                "install/download-installer",
                "install/partitioning"
            ]
        );
        assert!(f.quiet(&g).is_none());
        // Without QMP every screenshot is a recorded failure, and the screenshots step fails.
        assert_eq!(f.shots.failed.len(), 1 + 4);
        assert!(!screenshot_step(&f.shots).passed);
    }

    #[test]
    fn a_quiet_syslog_fails_naming_the_question_shown_and_hides_passwords() {
        let dir = tempfile::tempdir().unwrap();
        let log = |_: &str| {};
        let mut f = Follow::new(&log, no_qmp(), dir.path().into(), Instant::now());
        let g = opts(Duration::ZERO);
        for l in [
            "main-menu[1]: INFO: Menu item 'user-setup-udeb' selected",
            "debconf: --> GET passwd/root-password-crypted",
            "debconf: <-- 0 $6$secret",
            "debconf: --> SET passwd/root-password-crypted $6$secret",
            "debconf: <-- 0 value set",
            "debconf: --> INPUT critical passwd/root-password",
            "debconf: <-- 0 question will be asked",
            "debconf: --> INPUT critical passwd/root-password-again",
            "debconf: <-- 0 question will be asked",
            "debconf: --> GO",
        ] {
            assert!(f.line(l, g.stop_after).is_none());
        }
        let Some(End::Failed(why)) = f.quiet(&g) else {
            panic!("a quiet syslog past the limit must fail")
        };
        assert!(
            why.contains(
                "debconf questions passwd/root-password, passwd/root-password-again (installer step user-setup-udeb)"
            ),
            "{why}"
        );
        assert!(why.contains("screenshot FAILED"), "{why}");
        assert!(!why.contains("secret"), "{why}");
    }

    #[test]
    fn no_syslog_line_and_a_logged_failure_fail_too() {
        let dir = tempfile::tempdir().unwrap();
        let log = |_: &str| {};
        let mut f = Follow::new(&log, no_qmp(), dir.path().into(), Instant::now());
        let Some(End::Failed(why)) = f.quiet(&opts(Duration::ZERO)) else {
            panic!("no line within the first-line limit must fail")
        };
        assert!(why.contains("never reached its network"), "{why}");
        let Some(End::Failed(why)) = f.line(
            "picaboot: DISKS FAILED: disk ssd1 (SSD) matches none",
            Phase::Partitioning,
        ) else {
            panic!("a logged failure must fail")
        };
        assert!(why.starts_with("disks: disk ssd1"), "{why}");
    }
}
