//! `picaboot test install HOST`: the install proof in QEMU.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::{ProfilesArg, TestFailed};
use crate::debian::{self, Cache};
use crate::install::gtk::GtkOptions;
use crate::install::phases::Phase;
use crate::install::scenario::{self, Options};
use crate::install::shape::Shape;

fn parse_phase(s: &str) -> Result<Phase, String> {
    Phase::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = Phase::ALL.iter().map(|p| p.name()).collect();
        format!("one of {}", names.join(", "))
    })
}

/// `picaboot test …`.
#[derive(Debug, clap::Args)]
pub struct TestCmd {
    /// What to test.
    #[command(subcommand)]
    pub what: TestWhat,
}

/// Tests.
#[derive(Debug, clap::Subcommand)]
pub enum TestWhat {
    /// Install HOST in a VM shaped like the box, boot it whole and degraded, self-test it.
    Install(InstallConfig),
    /// Build VM NAME's system (cached), boot it from its disk in QEMU with its two NICs and
    /// disks, read its self-test, ssh into it with the declared key.
    Vm(super::test_vm::VmConfig),
    /// Boot the services VMs (pica01, pica02) linked by their public addresses, apply the
    /// services layer with `services form`'s plan over ssh, and check the volume, the swarm,
    /// the stack, the firewall, a reboot and a power cut.
    Services(super::test_services::ServicesConfig),
}

/// Arguments of `test install`.
#[derive(Debug, clap::Args)]
pub struct InstallConfig {
    /// Host (a file name in hosts/, without .toml).
    host: String,
    #[command(flatten)]
    profiles: ProfilesArg,
    /// Output directory: OUT/HOST/ gets report.xml (JUnit), report.json, serial logs.
    #[arg(short, long, value_name = "OUT", default_value = "out/test")]
    output: PathBuf,
    /// Debian mirror to install from, through the test's proxy (`apt` = this machine's).
    #[arg(long, value_name = "URL", default_value = "apt")]
    mirror: String,
    /// TEST ONLY: when the mirror's udeb index does not match Debian's signed InRelease, serve
    /// a harness udeb suite signed by a key made for this run (said in the output and report;
    /// the key never reaches shipped artifacts or the installed system).
    #[arg(long)]
    allow_unverified_udebs: bool,
    /// Skip the boots with one SSD removed.
    #[arg(long)]
    no_degraded: bool,
    /// Alter this rendered file (e.g. /etc/hosts) after it is installed: the self-test must
    /// name it (a proof that the file check can fail).
    #[arg(long, value_name = "PATH")]
    tamper: Option<String>,
    /// VM memory in MiB.
    #[arg(long, default_value_t = 3072)]
    memory: u32,
    /// Give up on the install after this many minutes.
    #[arg(long, default_value_t = 75, value_parser = clap::value_parser!(u64).range(1..))]
    install_timeout_min: u64,
    /// Keep the VM's disk images.
    #[arg(long)]
    keep_disks: bool,
    /// Which installer: `text` (serial console; the whole install, GPT check, boots from disk)
    /// or `gtk` (the graphical netboot artifacts that ship for the box, followed through the
    /// remote syslog with screenshots, until the phase after `--stop-after` begins).
    #[arg(long, value_enum, default_value = "text")]
    frontend: super::netboot::FrontendArg,
    /// gtk: the run passes when the phase after this one begins.
    #[arg(long, value_name = "PHASE", default_value = "partitioning", value_parser = parse_phase)]
    stop_after: Phase,
    /// gtk, TEST ONLY: remove this question's answer from the rendered preseed (e.g.
    /// passwd/root-password-crypted): the run must fail naming the question it stops at.
    #[arg(long, value_name = "QUESTION")]
    omit_answer: Option<String>,
    /// gtk: a screenshot when the installer's syslog has been quiet this many seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    quiet_shot_s: u64,
    /// gtk: fail when the installer's syslog stays quiet this many seconds (a question waits).
    /// Measured to the end of partitioning under TCG: the longest quiet stretch was 12 s.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    quiet_limit_s: u64,
    /// Cache directory (default: $XDG_CACHE_HOME/picaboot or ~/.cache/picaboot).
    #[arg(long, value_name = "DIR", env = "PICABOOT_CACHE")]
    cache: Option<PathBuf>,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs a test command.
pub fn test(c: TestCmd) -> anyhow::Result<()> {
    match c.what {
        TestWhat::Install(c) => install(c),
        TestWhat::Vm(c) => super::test_vm::vm(c),
        TestWhat::Services(c) => super::test_services::services(c),
    }
}

fn install(c: InstallConfig) -> anyhow::Result<()> {
    // Ctrl-C and SIGTERM remove what the run owns (containers, VM disks) before exiting.
    crate::cleanup::on_signals();
    let (mirror, security) =
        debian::sources::mirror_pair(&c.mirror).context("reading this machine's apt mirrors")?;
    let opts = Options {
        profiles: c.profiles.profiles.clone(),
        host: c.host.clone(),
        out: c.output.clone(),
        mirror,
        security,
        keyring: PathBuf::from(debian::DEFAULT_KEYRING),
        cache_dir: c.cache.clone().unwrap_or_else(Cache::default_dir),
        allow_unverified_udebs: c.allow_unverified_udebs,
        degraded: !c.no_degraded,
        tamper: c.tamper.clone(),
        shape: Shape::default(),
        memory_mib: c.memory,
        cpus: 2,
        install_timeout: Duration::from_secs(c.install_timeout_min * 60),
        boot_timeout: Duration::from_secs(20 * 60),
        keep_disks: c.keep_disks,
    };
    let start = std::time::Instant::now();
    let quiet = c.json;
    let log = move |line: &str| {
        if !quiet {
            let e = start.elapsed().as_secs();
            eprintln!("[{:02}:{:02}] {line}", e / 60, e % 60);
        }
    };
    let gtk = matches!(c.frontend, super::netboot::FrontendArg::Gtk);
    if !gtk && c.omit_answer.is_some() {
        anyhow::bail!("--omit-answer is for --frontend gtk");
    }
    if gtk && c.tamper.is_some() {
        anyhow::bail!("--tamper needs the boot from disk: --frontend text");
    }
    let ran = if gtk {
        let g = GtkOptions {
            omit_answer: c.omit_answer.clone(),
            quiet_shot: Duration::from_secs(c.quiet_shot_s),
            quiet_limit: Duration::from_secs(c.quiet_limit_s),
            first_line_limit: Duration::from_secs(15 * 60),
            stop_after: c.stop_after,
        };
        crate::install::gtk::run(&opts, &g, &log)
    } else {
        scenario::run(&opts, &log)
    };
    let outcome = match ran {
        Ok(o) => o,
        // Bad input is shown as it is (file:line diagnostics, the flag to pass); the
        // environment's failures say which run they stopped.
        Err(e) if crate::exit_class::ExitClass::exit_class(&e) == super::exit::Class::User => {
            return Err(e.into())
        }
        Err(e) => return Err(e).context(format!("test install {}", c.host)),
    };
    let dir = c.output.join(&c.host);
    std::fs::write(dir.join("report.xml"), outcome.junit()).context("writing report.xml")?;
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&outcome)? + "\n",
    )
    .context("writing report.json")?;
    print_outcome(&c, &outcome, &dir)?;
    let failed: Vec<String> = outcome.failures().iter().map(|s| s.name.clone()).collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(TestFailed(format!(
            "test install {}: failed: {}",
            c.host,
            failed.join(", ")
        ))
        .into())
    }
}

/// The steps (install phases and failures), a summary line, or the JSON outcome.
fn print_outcome(
    c: &InstallConfig,
    outcome: &scenario::RunOutcome,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    if c.json {
        outln!("{}", serde_json::to_string_pretty(outcome)?)?;
    } else {
        outln!(
            "test install {}: {}",
            c.host,
            outcome.udeb_source.describe()
        )?;
        for s in &outcome.steps {
            if s.kind == scenario::StepKind::Install || !s.passed {
                outln!(
                    "  {:<5} {}{}  {}",
                    if s.passed { "ok" } else { "FAIL" },
                    s.name,
                    if s.seconds > 0.0 {
                        format!(" ({:.0} s)", s.seconds)
                    } else {
                        String::new()
                    },
                    if s.passed { "" } else { s.detail.as_str() }
                )?;
            }
        }
        let checks = outcome
            .steps
            .iter()
            .filter(|s| s.kind == scenario::StepKind::Boot)
            .count();
        outln!(
            "  {} steps ({checks} from the boots), {} failed, {:.0} s in all; report: {}",
            outcome.steps.len(),
            outcome.failures().len(),
            outcome.seconds,
            dir.join("report.xml").display()
        )?;
        if let Some(last) = outcome.screenshots.last() {
            outln!(
                "  {} screenshots in {} (last: {}, {})",
                outcome.screenshots.len(),
                dir.join("screens").display(),
                last.file,
                last.label
            )?;
        }
    }
    Ok(())
}
