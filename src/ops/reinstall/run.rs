//! `reinstall`'s work after the confirmation, as one library call: the installer's udebs
//! (the signed index, or a test box's harness suite), the render and the netboot artifacts
//! reporting to this machine, a [`ServeSession`], one network boot through AMT, the installer
//! followed phase by phase ([`super::follow`]), then the first boot: ssh, the new host keys,
//! the post-install check.

use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use crate::amt::{AmtError, PowerAction};
use crate::debian::{Cache, ClientOptions};
use crate::install::harness::{self, IndexCheck, TestSources};
use crate::netboot::{self, NetbootOptions};
use crate::ops::post_install::{self, CheckRun, SshTarget};
use crate::project::{self, Project};
use crate::render::{render_hosts, RenderOptions, POST_INSTALL_CHECK};
use crate::serve::session::{ServeSession, SessionConfig, SessionError};

/// Why a reinstall stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReinstallError {
    /// The installer's udebs could not be settled (a stale index without the flag...).
    #[error("{step} {mirror}")]
    Udebs {
        /// What was being done.
        step: &'static str,
        /// The mirror.
        mirror: String,
        /// The cause.
        source: Box<harness::HarnessError>,
    },
    /// The mirror's udeb index is not the signed one (and no flag).
    #[error(transparent)]
    Stale(Box<harness::HarnessError>),
    /// The render or the netboot artifacts.
    #[error(transparent)]
    Netboot(Box<netboot::NetbootError>),
    /// The profiles (re-read for a test box's proxied mirror).
    #[error(transparent)]
    Profile(#[from] crate::profile::ProfileError),
    /// The security mirror of `--mirror apt`.
    #[error("reading this machine's security mirror")]
    Security(#[source] crate::debian::DebianError),
    /// serve could not start.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// AMT refused or failed the network boot.
    #[error("power {host} --pxe-once reset")]
    Power {
        /// Host.
        host: String,
        /// The cause.
        source: Box<AmtError>,
    },
    /// ssh, the host keys or the post-install check could not run.
    #[error(transparent)]
    Ops(#[from] crate::ops::OpsError),
    /// The install failed or overran a phase (the message holds the last installer lines).
    #[error("{0}")]
    Failed(String),
    /// The async runtime could not start.
    #[error("starting the async runtime")]
    Runtime(#[source] std::io::Error),
    /// The render has no post-install check (a template bug).
    #[error("the render of {0} has no post-install check")]
    NoCheck(String),
}

impl From<netboot::NetbootError> for ReinstallError {
    fn from(e: netboot::NetbootError) -> Self {
        ReinstallError::Netboot(Box::new(e))
    }
}

impl crate::exit_class::ExitClass for ReinstallError {
    fn exit_class(&self) -> crate::exit_class::Class {
        use crate::exit_class::Class;
        match self {
            ReinstallError::Udebs { source, .. } => source.exit_class(),
            ReinstallError::Stale(e) => e.exit_class(),
            ReinstallError::Netboot(e) => e.exit_class(),
            ReinstallError::Profile(e) => e.exit_class(),
            ReinstallError::Session(e) => e.exit_class(),
            ReinstallError::Power { source, .. } => source.exit_class(),
            ReinstallError::Ops(e) => e.exit_class(),
            ReinstallError::Failed(_) => Class::Test,
            ReinstallError::Security(_) | ReinstallError::Runtime(_) => Class::Env,
            ReinstallError::NoCheck(_) => Class::Bug,
        }
    }
}

/// What to reinstall and how (the CLI's arguments, checked).
#[derive(Debug, Clone)]
pub struct Job {
    /// Host profile name.
    pub host: String,
    /// Profiles directory.
    pub profiles: PathBuf,
    /// Output directory: netboot artifacts, logs and the new host keys under `OUT/HOST/`.
    pub output: PathBuf,
    /// Where serve listens (HTTP and the installer's syslog).
    pub listen: SocketAddrV4,
    /// The address the box is to use for serve, when not `listen`.
    pub advertise: Option<SocketAddrV4>,
    /// `--mirror` (`apt`, a URL; default the profile's).
    pub mirror: Option<String>,
    /// The new system's ssh.
    pub ssh: SshTarget,
    /// How long the first boot may take until ssh answers.
    pub first_boot_timeout: Duration,
    /// How long the post-install check (ssh and the script) may take.
    pub check_timeout: Duration,
    /// TEST BOXES ONLY: serve a harness udeb suite when the mirror's index is stale.
    pub allow_unverified_udebs: bool,
}

/// Prints progress lines with the time since the start.
#[derive(Debug, Clone)]
pub struct Clock {
    t0: Instant,
    host: String,
}

impl Clock {
    /// Starts the clock for `host`.
    pub fn start(host: &str) -> Self {
        Clock {
            t0: Instant::now(),
            host: host.to_string(),
        }
    }

    /// The host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// One progress line: `[MM:SS] HOST: msg`.
    pub fn say(&self, msg: &str) {
        let s = self.t0.elapsed().as_secs();
        crate::progress::println(&format!(
            "[{:02}:{:02}] {}: {msg}",
            s / 60,
            s % 60,
            self.host
        ));
    }
}

/// The udebs decided: `None` for the mirror's signed index, else the test box's sources.
fn udebs(
    job: &Job,
    clock: &Clock,
    rt: &tokio::runtime::Runtime,
    client: &crate::debian::Client,
    upstream: &str,
    suite: &str,
) -> Result<Option<TestSources>, ReinstallError> {
    let udebs = |step, source| ReinstallError::Udebs {
        step,
        mirror: upstream.to_string(),
        source: Box::new(source),
    };
    if job.allow_unverified_udebs {
        eprintln!(
            "picaboot: TEST BOX: --allow-unverified-udebs: a udeb index Debian did not sign may \
             be served to the installer (never for the real box)"
        );
        let (_, security) =
            crate::debian::sources::mirror_pair(job.mirror.as_deref().unwrap_or(upstream))
                .map_err(ReinstallError::Security)?;
        let s = harness::test_sources(client, rt, upstream, &security, suite, true)
            .map_err(|e| udebs("the installer's udebs from", e))?;
        clock.say(&format!("udebs: {}", s.udeb_source.describe()));
        clock.say(&format!(
            "the installer's mirror: serve's proxy of {upstream} (security: {security})"
        ));
        return Ok(Some(s));
    }
    match harness::check_index(client, suite).map_err(|e| udebs("checking the udeb index of", e))? {
        IndexCheck::Signed(sha) => {
            clock.say(&format!(
                "udebs: signed udeb index of {upstream} (sha256 {sha})"
            ));
            Ok(None)
        }
        // The stale index error says it all (and the flag a test box may pass).
        stale => Err(ReinstallError::Stale(Box::new(harness::stale_error(
            client, suite, &stale,
        )))),
    }
}

/// Runs the reinstall of a confirmed job: returns the post-install check's run (its
/// verdict is the caller's to show), or why it stopped. `consent` gives AMT's user-consent
/// code when AMT asks for one.
pub fn run(
    job: &Job,
    project: &Project,
    amt: &mut crate::amt::Client,
    consent: &mut dyn FnMut() -> Option<String>,
    clock: &Clock,
) -> Result<CheckRun, ReinstallError> {
    let host = &job.host;
    let seen = job.advertise.unwrap_or(job.listen);
    let profile_host = &project.loaded.profiles.hosts[host];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ReinstallError::Runtime)?;

    // 1. The installer's udebs: the signed index of the mirror, checked before the box is
    //    touched, or (test boxes, flag) the harness suite with serve proxying the mirrors.
    let upstream = netboot::host::mirror_url(job.mirror.as_deref(), profile_host)?;
    let client = netboot::host::archive_client(
        ClientOptions {
            mirror: upstream.clone(),
            keyring: PathBuf::from(crate::debian::DEFAULT_KEYRING),
            insecure: false,
            cache_dir: Cache::default_dir(),
        },
        profile_host,
    )?;
    let sources = udebs(
        job,
        clock,
        &rt,
        &client,
        &upstream,
        &profile_host.install.suite,
    )?;
    let proxied;
    let (project, render, keyring_append) = match &sources {
        Some(s) => {
            let overrides = project::Overrides {
                mirror: Some(TestSources::mirror_url(&seen.to_string())),
                ..Default::default()
            };
            proxied = project::open_with(&job.profiles, &overrides)?;
            let render = RenderOptions {
                sources: Some(s.udeb_source.installer_sources(&seen.to_string())),
                ..Default::default()
            };
            (
                &proxied,
                render,
                s.harness.as_ref().map(|h| h.public_key.clone()),
            )
        }
        None => (project, RenderOptions::default(), None),
    };

    // 2. Render (for the post-install check) and netboot, reporting to `seen`.
    let check_script = netboot_for_the_box(job, clock, project, &client, render, keyring_append)?;

    // 3. serve: HTTP (boot.ipxe, kernel, initrd, progress; the mirror proxies of a test box)
    //    and the installer's syslog (UDP); stopped when `session` is dropped, on every path.
    // The harness suite (its files, its key) must outlive the install: held to the end.
    let (mirror, security, _harness) = match sources {
        Some(s) => (Some(s.mirror), Some(s.security), s.harness),
        None => (None, None, None),
    };
    let (mut session, syslog) = serve_the_box(job, clock, &rt, mirror, security)?;

    // 4. One network boot, then the installer, phase by phase.
    let out = amt
        .power_with_consent(PowerAction::Reset, true, consent)
        .map_err(|source| ReinstallError::Power {
            host: host.clone(),
            source: Box::new(source),
        })?;
    clock.say(&format!(
        "AMT: next boot from the network ({}); {}",
        out.pxe_source.as_deref().unwrap_or("PXE"),
        out.note.as_deref().unwrap_or("reset sent")
    ));
    let followed =
        super::follow::follow(clock, &syslog, session.served(), session.progress(), seen);
    session.close_syslog();
    drop(session);
    followed?;

    // 5. First boot: ssh, the new host key, the post-install check.
    first_boot(job, clock, &check_script)
}

/// The box's render (its post-install check script is returned) and netboot artifacts,
/// reporting to serve at the address the box sees.
fn netboot_for_the_box(
    job: &Job,
    clock: &Clock,
    project: &Project,
    client: &crate::debian::Client,
    render: RenderOptions,
    keyring_append: Option<Vec<u8>>,
) -> Result<String, ReinstallError> {
    let host = &job.host;
    let seen = job.advertise.unwrap_or(job.listen);
    let rendered = render_hosts(project, std::slice::from_ref(host), render.clone())
        .map_err(netboot::NetbootError::from)?;
    let check_script = rendered.trees[host]
        .files()
        .find(|(p, _)| **p == *POST_INSTALL_CHECK)
        .map(|(_, f)| String::from_utf8_lossy(&f.bytes).into_owned())
        .ok_or_else(|| ReinstallError::NoCheck(host.clone()))?;
    let built = netboot::host::build_host(
        project,
        host,
        client,
        &NetbootOptions {
            frontend: None,
            supplement: true,
            base_url: format!("http://{seen}"),
            keyring_append,
            report_to: Some(seen),
        },
        render,
        &job.output,
    )?;
    for l in &built.locks {
        clock.say(&format!(
            "corosync.conf of cluster {} changed: config_version is now {} (recorded in {}; commit it)",
            l.cluster,
            l.config_version,
            l.path.display()
        ));
    }
    clock.say(&format!("netboot artifacts in {}", built.dir.display()));

    Ok(check_script)
}

/// serve for the box: HTTP and the installer's syslog, whose lines come on the receiver.
fn serve_the_box(
    job: &Job,
    clock: &Clock,
    rt: &tokio::runtime::Runtime,
    mirror: Option<crate::serve::mirror::MirrorProxy>,
    security: Option<crate::serve::mirror::MirrorProxy>,
) -> Result<(ServeSession, mpsc::Receiver<String>), ReinstallError> {
    let host = &job.host;
    let seen = job.advertise.unwrap_or(job.listen);
    let (tx, rx) = mpsc::channel::<String>();
    let tx = Mutex::new(tx);
    let session = ServeSession::start(
        rt,
        SessionConfig {
            root: &job.output,
            listen: SocketAddr::V4(job.listen),
            serve_log: job.output.join(host).join("reinstall-serve.log"),
            syslog_log: job.output.join(host).join("install-syslog.log"),
            mirror,
            security,
            trust_progress: None,
        },
        move |line| {
            if let Ok(tx) = tx.lock() {
                let _ = tx.send(line.to_string());
            }
        },
    )?;
    let listen = job.listen;
    clock.say(&format!(
        "serve on http://{listen}/ (the box: http://{seen}/{host}/netboot/boot.ipxe), installer syslog on udp {listen}"
    ));
    Ok((session, rx))
}

/// ssh after the first boot, the new host keys recorded, the post-install check.
fn first_boot(job: &Job, clock: &Clock, script: &str) -> Result<CheckRun, ReinstallError> {
    let ssh = &job.ssh;
    let waited = post_install::wait_for_ssh(ssh, job.first_boot_timeout)?;
    clock.say(&format!(
        "ssh answers on {}:{} ({:.0} s after the install)",
        ssh.host(),
        ssh.port,
        waited.as_secs_f64()
    ));
    let known = job.output.join(&job.host).join("known_hosts");
    let (fps, not_shown) = post_install::record_host_keys(ssh, &known)?;
    for f in &fps {
        clock.say(&format!("new host key: {f}"));
    }
    if !not_shown.is_empty() {
        clock.say(&format!(
            "note: the box showed no {} host key in {} scans; recorded the others",
            not_shown.join(", "),
            post_install::KEYSCAN_ROUNDS
        ));
    }
    clock.say(&format!(
        "recorded in {} (update yours: ssh-keygen -R {})",
        known.display(),
        ssh.host()
    ));
    // Once more if the connection dropped (the Proxmox first-boot unit reboots the box
    // once), after ssh answers again; a check that hung past its deadline is not run again.
    let deadline = job.check_timeout;
    match post_install::run_check(ssh, &known, script, deadline) {
        Ok(r) => Ok(r),
        Err(e) if e.hung() => Err(e.into()),
        Err(e) => {
            clock.say(&format!(
                "{e}; waiting for ssh again (a first-boot reboot?)"
            ));
            std::thread::sleep(Duration::from_secs(10));
            post_install::wait_for_ssh(ssh, job.first_boot_timeout)?;
            Ok(post_install::run_check(ssh, &known, script, deadline)?)
        }
    }
}
