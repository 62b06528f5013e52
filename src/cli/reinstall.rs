//! `picaboot reinstall HOST`: check -> confirmation -> render -> netboot (reporting to this
//! machine) -> serve (HTTP, progress, the installer's syslog over UDP) -> `power --pxe-once
//! reset` -> the installer followed phase by phase with per-phase timeouts -> first boot ->
//! the new ssh host key recorded -> the post-install check over ssh -> verdict.

use std::io::{BufRead, Write};
use std::net::{SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::netboot::HostExtras;
use super::{ProfilesArg, TestFailed, UsageError};
use crate::amt::PowerAction;
use crate::debian::{Cache, ClientOptions};
use crate::install::harness::{self, IndexCheck, TestSources};
use crate::install::phases::{Event, Tracker};
use crate::ops::post_install::{self, SshTarget};
use crate::ops::reinstall::{Follower, Plan, Refusal, Step, PHASES};
use crate::render::{render_hosts, RenderOptions, POST_INSTALL_CHECK};
use crate::{project, serve};

/// Arguments of `reinstall`.
#[derive(Debug, clap::Args)]
pub struct ReinstallConfig {
    /// Host (a file name in hosts/, without .toml).
    host: String,
    /// Do not ask for confirmation (scripts).
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    profiles: ProfilesArg,
    /// File with `USER:PASSWORD` for AMT (see `power`).
    #[arg(long, value_name = "FILE")]
    credentials: Option<PathBuf>,
    /// Seconds to wait for AMT.
    #[arg(long, value_name = "SECS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
    /// The 6-digit user-consent code AMT shows on the box's screen, when AMT requires consent
    /// (else PICABOOT_AMT_CONSENT_CODE, else a prompt when on a terminal; see `power`).
    #[arg(long, value_name = "CODE")]
    consent_code: Option<String>,
    /// This machine's address as the box sees it (IPv4:PORT): `serve` listens there (HTTP, and
    /// UDP for the installer's syslog) and the box's iPXE loads HOST/netboot/boot.ipxe from it.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddrV4>,
    /// The address the box is to use for serve when it differs from --listen (NAT, a port
    /// forward, QEMU's 10.0.2.2): written on the installer's boot line and in the boot menus.
    #[arg(long, value_name = "ADDR:PORT")]
    advertise: Option<SocketAddrV4>,
    /// Output directory: the netboot artifacts go to OUT/HOST/netboot/, the installer's log,
    /// serve's log and the new host keys to OUT/HOST/; serve serves OUT.
    #[arg(short, long, value_name = "OUT", default_value = "out")]
    output: PathBuf,
    /// Debian mirror to fetch the installer from (default: the profile's; `apt` = this
    /// machine's apt mirror).
    #[arg(long, value_name = "URL")]
    mirror: Option<String>,
    /// ssh destination of the new system (default: root@ the host's public IPv4).
    #[arg(long, value_name = "DEST")]
    ssh: Option<String>,
    /// ssh port of the new system.
    #[arg(long, value_name = "PORT", default_value_t = 22)]
    ssh_port: u16,
    /// Minutes to wait for ssh after the install ended (first boot, Proxmox's reboot).
    #[arg(long, value_name = "MIN", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    first_boot_timeout_min: u64,
    /// Seconds the post-install check (ssh and the script) may take; when they pass, ssh and
    /// everything it started are killed and reinstall fails naming the check.
    #[arg(long, value_name = "SECS", default_value_t = post_install::CHECK_DEADLINE.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    check_timeout: u64,
    /// TEST BOXES ONLY (a VM rehearsal): when the mirror's udeb index does not match Debian's
    /// signed InRelease (a stale mirror), serve the installer a harness udeb suite signed by
    /// a key made for this run and added to the installer's keyring only; serve then also
    /// proxies the Debian and security mirrors for the installer. Said in the output; the
    /// installed system never trusts that key (the post-install check proves it). Without it
    /// a stale udeb index is refused before the box is touched.
    #[arg(long)]
    allow_unverified_udebs: bool,
}

/// Runs `reinstall`.
pub fn reinstall(c: ReinstallConfig) -> anyhow::Result<()> {
    let project = project::open(&c.profiles.profiles).map_err(|e| {
        let problems = match &e {
            crate::profile::ProfileError::Invalid(d) => d.0.len(),
            _ => 0,
        };
        anyhow::Error::new(e).context(Refusal::Check {
            host: c.host.clone(),
            problems,
        })
    })?;
    let profiles = &project.loaded.profiles;
    let host = profiles
        .hosts
        .get(&c.host)
        .ok_or_else(|| UsageError(format!("no host profile `{}`", c.host)))?;
    let listen = c.listen.ok_or_else(|| {
        UsageError(
            "--listen ADDR:PORT is needed: this machine's IPv4 address and a port the box can \
             reach (serve answers its iPXE and receives the installer's reports there)"
                .into(),
        )
    })?;
    if listen.port() == 0 {
        return Err(UsageError(format!(
            "--listen {listen}: give the port the box is to reach (the boot line names it)"
        ))
        .into());
    }
    if c.advertise.unwrap_or(listen).ip().is_unspecified() {
        return Err(UsageError(format!(
            "--listen {listen}: the box needs an address it can reach on its boot line; give \
             --advertise ADDR:PORT (this machine's address on the box's network)"
        ))
        .into());
    }
    let ssh = SshTarget {
        dest: c
            .ssh
            .clone()
            .unwrap_or_else(|| format!("root@{}", host.network.ipv4.addr())),
        port: c.ssh_port,
    };
    ssh.validate().map_err(|e| UsageError(e.to_string()))?;
    let mut client = super::power::client(
        profiles,
        &c.host,
        c.credentials.as_deref(),
        Duration::from_secs(c.timeout),
    )?;
    let target = client.target().clone();
    let vpro = match &target.jump {
        Some(j) => format!("{} (through jump host {j})", target.origin()),
        None => target.origin(),
    };
    if let Err(e) = client.status() {
        return Err(anyhow::Error::new(e).context(Refusal::VproSilent {
            host: c.host.clone(),
        }));
    }
    let plan = Plan::new(host, vpro);
    if !c.yes {
        eprint!("{}", plan.prompt());
        std::io::stderr().flush().ok();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !plan.confirmed_by(&answer) {
            return Err(UsageError(
                Refusal::NotConfirmed {
                    host: c.host.clone(),
                }
                .to_string(),
            )
            .into());
        }
    }
    eprintln!("{}: reinstall confirmed", c.host);
    run(&c, &project, listen, &ssh, &mut client)
}

/// Prints one progress line with the time since `t0`.
fn say(t0: Instant, host: &str, msg: &str) {
    let s = t0.elapsed().as_secs();
    crate::progress::println(&format!("[{:02}:{:02}] {host}: {msg}", s / 60, s % 60));
}

/// Everything after the confirmation.
fn run(
    c: &ReinstallConfig,
    project: &project::Project,
    listen: SocketAddrV4,
    ssh: &SshTarget,
    amt: &mut crate::amt::Client,
) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let host = &c.host;
    let seen = c.advertise.unwrap_or(listen);
    let profile_host = &project.loaded.profiles.hosts[host];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;

    // 1. The installer's udebs: the signed index of the mirror, checked before the box is
    //    touched, or (test boxes, flag) the harness suite with serve proxying the mirrors.
    let upstream = super::netboot::mirror_url(c.mirror.as_deref(), profile_host)?;
    let suite = &profile_host.install.suite;
    let client = super::netboot::archive_client(
        ClientOptions {
            mirror: upstream.clone(),
            keyring: PathBuf::from(crate::debian::DEFAULT_KEYRING),
            insecure: false,
            cache_dir: Cache::default_dir(),
        },
        profile_host,
    )?;
    let sources = if c.allow_unverified_udebs {
        eprintln!(
            "picaboot: TEST BOX: --allow-unverified-udebs: a udeb index Debian did not sign may \
             be served to the installer (never for the real box)"
        );
        let (_, security) =
            crate::debian::sources::mirror_pair(c.mirror.as_deref().unwrap_or(&upstream))
                .context("reading this machine's security mirror")?;
        let s = harness::test_sources(&client, &rt, &upstream, &security, suite, true)
            .with_context(|| format!("the installer's udebs from {upstream}"))?;
        say(t0, host, &format!("udebs: {}", s.udeb_source.describe()));
        say(
            t0,
            host,
            &format!("the installer's mirror: serve's proxy of {upstream} (security: {security})"),
        );
        Some(s)
    } else {
        match harness::check_index(&client, suite)
            .with_context(|| format!("checking the udeb index of {upstream}"))?
        {
            IndexCheck::Signed(sha) => say(
                t0,
                host,
                &format!("udebs: signed udeb index of {upstream} (sha256 {sha})"),
            ),
            stale => return Err(harness::stale_error(&client, suite, &stale).into()),
        }
        None
    };
    let proxied;
    let (project, extras) = match &sources {
        Some(s) => {
            let overrides = project::Overrides {
                mirror: Some(TestSources::mirror_url(&seen.to_string())),
                ..Default::default()
            };
            proxied = project::open_with(&c.profiles.profiles, &overrides)?;
            let extras = HostExtras {
                render: RenderOptions {
                    sources: Some(s.udeb_source.installer_sources(&seen.to_string())),
                    ..Default::default()
                },
                keyring_append: s.harness.as_ref().map(|h| h.public_key.clone()),
            };
            (&proxied, extras)
        }
        None => (project, HostExtras::default()),
    };

    // 2. Render (for the post-install check) and netboot, reporting to `seen`.
    let rendered = render_hosts(project, std::slice::from_ref(host), extras.render.clone())?;
    let check_script = rendered.trees[host]
        .files()
        .find(|(p, _)| **p == *POST_INSTALL_CHECK)
        .map(|(_, f)| String::from_utf8_lossy(&f.bytes).into_owned())
        .context("the render has no post-install check")?;
    let nb = super::netboot::NetbootConfig {
        host: Some(host.clone()),
        all: false,
        profiles: c.profiles.clone(),
        output: c.output.clone(),
        frontend: None,
        mirror: Some(upstream.clone()),
        keyring: PathBuf::from(crate::debian::DEFAULT_KEYRING),
        insecure: false,
        cache: None,
        base_url: format!("http://{seen}"),
        report_to: Some(seen),
        no_supplement: false,
        json: false,
    };
    super::netboot::netboot_host(&nb, project, host, &extras)?;
    say(
        t0,
        host,
        &format!(
            "netboot artifacts in {}",
            crate::netboot::target_dir(&c.output, host).display()
        ),
    );

    // 3. serve: HTTP (boot.ipxe, kernel, initrd, progress; the mirror proxies of a test box)
    //    and the installer's syslog (UDP).
    let log_path = c.output.join(host).join("reinstall-serve.log");
    let log_file = std::sync::Mutex::new(
        std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?,
    );
    let (fetch_tx, fetch_rx) = mpsc::channel::<String>();
    let fetch_tx = std::sync::Mutex::new(fetch_tx);
    let sink: serve::LogSink = Arc::new(move |line: &str| {
        if let Ok(mut f) = log_file.lock() {
            let _ = writeln!(f, "{line}");
        }
        if let Ok(tx) = fetch_tx.lock() {
            let _ = tx.send(line.to_string());
        }
    });
    let addr = SocketAddr::V4(listen);
    let (mirror_proxy, security_proxy, _harness) = match sources {
        Some(s) => (Some(s.mirror), Some(s.security), s.harness),
        None => (None, None, None),
    };
    let server = rt
        .block_on(serve::Server::bind_with_mirrors(
            &c.output,
            addr,
            sink,
            mirror_proxy,
            security_proxy,
        ))
        .with_context(|| format!("serve on {addr}"))?;
    let progress = server.progress();
    let receiver = rt
        .block_on(serve::syslog::SyslogReceiver::bind(addr))
        .with_context(|| format!("the installer's syslog on udp {addr}"))?;
    let (tx, rx) = mpsc::channel::<String>();
    let syslog_path = c.output.join(host).join("install-syslog.log");
    let syslog_file = std::sync::Mutex::new(
        std::fs::File::create(&syslog_path)
            .with_context(|| format!("creating {}", syslog_path.display()))?,
    );
    let received = rt.spawn(receiver.run(move |_, line| {
        if let Ok(mut f) = syslog_file.lock() {
            let _ = writeln!(f, "{line}");
        }
        let _ = tx.send(line.to_string());
    }));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let served = rt.spawn(server.run(async move {
        let _ = stop_rx.await;
    }));
    say(
        t0,
        host,
        &format!(
            "serve on http://{listen}/ (the box: http://{seen}/{host}/netboot/boot.ipxe), installer syslog on udp {listen}"
        ),
    );
    let stop = || {
        received.abort();
        let _ = stop_tx.send(());
        let _ = rt.block_on(served);
    };

    // 4. One network boot, then the installer, phase by phase.
    let consent_flag = c.consent_code.clone();
    let out = amt
        .power_with_consent(PowerAction::Reset, true, &mut || {
            super::power::consent_code(consent_flag.as_deref(), host)
        })
        .with_context(|| format!("power {host} --pxe-once reset"))?;
    say(
        t0,
        host,
        &format!(
            "AMT: next boot from the network ({}); {}",
            out.pxe_source.as_deref().unwrap_or("PXE"),
            out.note.as_deref().unwrap_or("reset sent")
        ),
    );
    let followed = follow(t0, host, &rx, &fetch_rx, &progress, seen);
    stop();
    followed?;

    // 5. First boot: ssh, the new host key, the post-install check.
    let waited =
        post_install::wait_for_ssh(ssh, Duration::from_secs(c.first_boot_timeout_min * 60))?;
    say(
        t0,
        host,
        &format!(
            "ssh answers on {}:{} ({:.0} s after the install)",
            ssh.host(),
            ssh.port,
            waited.as_secs_f64()
        ),
    );
    let known = c.output.join(host).join("known_hosts");
    let (fps, not_shown) = post_install::record_host_keys(ssh, &known)?;
    for f in &fps {
        say(t0, host, &format!("new host key: {f}"));
    }
    if !not_shown.is_empty() {
        say(
            t0,
            host,
            &format!(
                "note: the box showed no {} host key in {} scans; recorded the others",
                not_shown.join(", "),
                post_install::KEYSCAN_ROUNDS
            ),
        );
    }
    say(
        t0,
        host,
        &format!(
            "recorded in {} (update yours: ssh-keygen -R {})",
            known.display(),
            ssh.host()
        ),
    );
    let run = run_check_with_retry(
        t0,
        host,
        ssh,
        &known,
        &check_script,
        c.first_boot_timeout_min,
        Duration::from_secs(c.check_timeout),
    )?;
    for ch in &run.report.checks {
        outln!(
            "{} {} {}",
            if ch.passed { "PASS" } else { "FAIL" },
            ch.name,
            ch.detail
        )?;
    }
    let failed = run.report.checks.iter().filter(|c| !c.passed).count();
    say(
        t0,
        host,
        &format!(
            "post-install check: {} checks, {failed} failed",
            run.report.checks.len()
        ),
    );
    if failed > 0 || run.status != 0 {
        return Err(TestFailed(format!(
            "{host}: the post-install check failed ({failed} of {} checks)",
            run.report.checks.len()
        ))
        .into());
    }
    say(t0, host, "reinstalled and checked");
    Ok(())
}

/// The post-install check; once more if the connection dropped (the Proxmox first-boot unit
/// reboots the box once), after ssh answers again. A check that hung past `deadline` is not
/// run again.
fn run_check_with_retry(
    t0: Instant,
    host: &str,
    ssh: &SshTarget,
    known: &Path,
    script: &str,
    timeout_min: u64,
    deadline: Duration,
) -> anyhow::Result<post_install::CheckRun> {
    match post_install::run_check(ssh, known, script, deadline) {
        Ok(r) => Ok(r),
        Err(e @ crate::ops::OpsError::Hung { .. }) => Err(e.into()),
        Err(e) => {
            say(
                t0,
                host,
                &format!("{e}; waiting for ssh again (a first-boot reboot?)"),
            );
            std::thread::sleep(Duration::from_secs(10));
            post_install::wait_for_ssh(ssh, Duration::from_secs(timeout_min * 60))?;
            Ok(post_install::run_check(ssh, known, script, deadline)?)
        }
    }
}

/// Follows the installer's syslog and its progress reports to `done`, each phase within its
/// limit; a failure or a timeout ends with the last installer lines.
fn follow(
    t0: Instant,
    host: &str,
    rx: &mpsc::Receiver<String>,
    served: &mpsc::Receiver<String>,
    progress: &serve::ProgressLog,
    seen: SocketAddrV4,
) -> anyhow::Result<()> {
    let boot_files = [
        format!("/{host}/netboot/boot.ipxe"),
        format!("/{host}/netboot/linux"),
        format!("/{host}/netboot/initrd.gz"),
    ];
    let mut fetched = [false; 3];
    let mut tracker = Tracker::new(20);
    let mut follower = Follower::default();
    let start = Instant::now();
    let mut entered = Instant::now();
    say(
        t0,
        host,
        &format!(
            "{} ... ({} at most): waiting for the box to boot the installer",
            PHASES[0].0,
            mins(PHASES[0].1)
        ),
    );
    // On a terminal, the running phase's elapsed time and the installer's last log line.
    let mut live = crate::progress::status(&format!("{host}: {}", PHASES[0].0));
    let fail = |tracker: &Tracker, fetched: &[bool; 3], why: String| -> anyhow::Error {
        let lines = tracker.last_lines();
        let mut msg = format!("{host}: the install failed: {why}");
        if lines.is_empty() {
            msg.push_str(&if fetched[0] {
                format!(
                    "; the box fetched its boot script but no installer log came: does UDP reach {seen}?"
                )
            } else {
                format!(
                    "; the box never fetched http://{seen}{}: did it boot from the network, and does its PXE chain there?",
                    boot_files[0]
                )
            });
        }
        if !lines.is_empty() {
            msg.push_str("\nlast installer log lines:\n  ");
            msg.push_str(&lines.join("\n  "));
        }
        TestFailed(msg).into()
    };
    loop {
        // serve's log: `CLIENT METHOD PATH STATUS BYTES`; the box's boot files, once each.
        while let Ok(line) = served.try_recv() {
            let w: Vec<&str> = line.split_whitespace().collect();
            if let [client, "GET", path, "200", bytes] = w.as_slice() {
                if let Some(i) = boot_files.iter().position(|f| f == path) {
                    if !fetched[i] {
                        fetched[i] = true;
                        say(
                            t0,
                            host,
                            &format!("{client} fetched {path} ({bytes} bytes)"),
                        );
                    }
                }
            }
        }
        let mut reports: Vec<&'static str> = Vec::new();
        while let Ok(line) = rx.try_recv() {
            live.line(&line);
            match tracker.line(&line) {
                Some(Event::Phase(p)) => reports.push(p),
                Some(Event::Failed(f)) => return Err(fail(&tracker, &fetched, f)),
                None => {}
            }
        }
        if progress.done(host) {
            reports.push("done");
        }
        for p in reports {
            let before = follower.phase();
            match follower.report(p, start.elapsed()) {
                Step::Entered(i) => {
                    if i > 0 {
                        say(
                            t0,
                            host,
                            &format!("{before} done in {}", mins(entered.elapsed())),
                        );
                    }
                    entered = Instant::now();
                    live = crate::progress::status(&format!("{host}: {}", PHASES[i].0));
                    say(
                        t0,
                        host,
                        &format!("{} ... ({} at most)", PHASES[i].0, mins(PHASES[i].1)),
                    );
                }
                Step::Done => {
                    say(
                        t0,
                        host,
                        &format!("{before} done in {}", mins(entered.elapsed())),
                    );
                    say(t0, host, &format!("the installer reported the end of the install ({} in all); the box reboots from its disk", mins(start.elapsed())));
                    return Ok(());
                }
                Step::Unexpected(what) => say(t0, host, &format!("note: phase {what}")),
                Step::Same | Step::TimedOut { .. } => {}
            }
        }
        if let Step::TimedOut { phase, limit } = follower.tick(start.elapsed()) {
            return Err(fail(
                &tracker,
                &fetched,
                format!("{phase} took longer than {}", mins(limit)),
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn mins(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}m{:02}s", s / 60, s % 60)
}
