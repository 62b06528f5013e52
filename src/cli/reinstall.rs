//! `picaboot reinstall HOST`: check -> confirmation -> render -> netboot (reporting to this
//! machine) -> serve (HTTP, progress, the installer's syslog over UDP) -> `power --pxe-once
//! reset` -> the installer followed phase by phase with per-phase timeouts -> first boot ->
//! the new ssh host key recorded -> the post-install check over ssh -> verdict.

use std::io::{BufRead, Write};
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::time::Duration;

use super::{ProfilesArg, TestFailed, UsageError};
use crate::ops::post_install::SshTarget;
use crate::ops::reinstall::run::{Clock, Job};
use crate::ops::reinstall::{self, Plan, Refusal};
use crate::project;

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
    #[command(flatten)]
    amt: super::power::AmtArgs,
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
    #[arg(long, value_name = "SECS", default_value_t = crate::ops::post_install::CHECK_DEADLINE.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
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
    // Ctrl-C and SIGTERM end what the run owns (ssh, scp, their process groups) first.
    crate::cleanup::on_signals();
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
    let listen = reinstall::listen_address(c.listen, c.advertise).map_err(UsageError)?;
    let ssh = SshTarget {
        dest: c
            .ssh
            .clone()
            .unwrap_or_else(|| format!("root@{}", host.network.ipv4.addr())),
        port: c.ssh_port,
    };
    ssh.validate().map_err(|e| UsageError(e.to_string()))?;
    let mut client = c.amt.client(profiles, &c.host)?;
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
        confirm(&plan, &c.host)?;
    }
    eprintln!("{}: reinstall confirmed", c.host);
    let job = Job {
        host: c.host.clone(),
        profiles: c.profiles.profiles.clone(),
        output: c.output.clone(),
        listen,
        advertise: c.advertise,
        mirror: c.mirror.clone(),
        ssh,
        first_boot_timeout: Duration::from_secs(c.first_boot_timeout_min * 60),
        check_timeout: Duration::from_secs(c.check_timeout),
        allow_unverified_udebs: c.allow_unverified_udebs,
    };
    let clock = Clock::start(&c.host);
    // Its errors name the host and the step (an install that failed or overran: exit 3,
    // with the installer's last lines).
    let run = reinstall::run::run(
        &job,
        &project,
        &mut client,
        &mut c.amt.consent(&c.host),
        &clock,
    )?;
    judge_checks(&run.report, run.status, &c.host, &clock)?;
    clock.say("reinstalled and checked");
    Ok(())
}

/// Asks for the host's name on stdin (the plan's prompt on stderr); anything else refuses.
fn confirm(plan: &Plan, host: &str) -> anyhow::Result<()> {
    eprint!("{}", plan.prompt());
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if plan.confirmed_by(&answer) {
        return Ok(());
    }
    Err(UsageError(
        Refusal::NotConfirmed {
            host: host.to_string(),
        }
        .to_string(),
    )
    .into())
}

/// Prints the post-install checks; a failed one (or a failed check run) is a failed test.
fn judge_checks(
    report: &crate::qemu::Report,
    status: i32,
    host: &str,
    clock: &Clock,
) -> anyhow::Result<()> {
    for ch in &report.checks {
        outln!(
            "{} {} {}",
            if ch.passed { "PASS" } else { "FAIL" },
            ch.name,
            ch.detail
        )?;
    }
    let failed = report.checks.iter().filter(|c| !c.passed).count();
    clock.say(&format!(
        "post-install check: {} checks, {failed} failed",
        report.checks.len()
    ));
    if failed > 0 || status != 0 {
        return Err(TestFailed(format!(
            "{}: the post-install check failed ({failed} of {} checks)",
            host,
            report.checks.len()
        ))
        .into());
    }
    Ok(())
}
