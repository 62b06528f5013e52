//! `reinstall`'s decisions, kept apart from the side effects so they can be tested: the plan
//! and the confirmation it asks for (host, vPro address, the disks it erases), the refusals
//! (profiles that do not check, an AMT that does not answer), and the installer phases with
//! their timeouts that the progress follower walks through.

use std::time::Duration;

pub mod follow;
pub mod run;

use serde::Serialize;

use crate::install::phases::Phase;
use crate::profile::Host;

/// A point of the install `reinstall` follows: an installer phase (read from the
/// installer's remote syslog), then the late command's report that the install is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Milestone {
    /// A phase of the installer.
    Installer(Phase),
    /// The late command reported `stage=done` to `serve`.
    Done,
}

impl Milestone {
    /// Every milestone, in order: the install proof's phases, then `done`.
    pub const ALL: [Milestone; 9] = [
        Milestone::Installer(Phase::BootToNetwork),
        Milestone::Installer(Phase::DownloadInstaller),
        Milestone::Installer(Phase::Partitioning),
        Milestone::Installer(Phase::BaseSystem),
        Milestone::Installer(Phase::AptSetup),
        Milestone::Installer(Phase::Packages),
        Milestone::Installer(Phase::Grub),
        Milestone::Installer(Phase::FinishInstall),
        Milestone::Done,
    ];

    /// The longest it may take. The limits are generous for the real box (an i5 with SSDs
    /// installs in minutes) and still catch a stuck installer.
    pub fn limit(self) -> Duration {
        let min = |m: u64| Duration::from_secs(m * 60);
        match self {
            Milestone::Installer(Phase::BootToNetwork) => min(20),
            Milestone::Installer(Phase::BaseSystem | Phase::Packages) => min(60),
            Milestone::Installer(_) => min(30),
            Milestone::Done => min(10),
        }
    }

    /// Its name in what `reinstall` says (`partitioning`, `done`).
    pub fn name(self) -> &'static str {
        match self {
            Milestone::Installer(p) => p.name(),
            Milestone::Done => crate::serve::STAGE_DONE,
        }
    }

    /// Its position in [`Milestone::ALL`].
    fn index(self) -> usize {
        Milestone::ALL
            .iter()
            .position(|m| *m == self)
            .expect("every milestone is in ALL")
    }
}

impl std::fmt::Display for Milestone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `--listen` (with `--advertise`): the address and port serve listens on, which the box must
/// reach on its boot line; the reason when it cannot be used.
pub fn listen_address(
    listen: Option<std::net::SocketAddrV4>,
    advertise: Option<std::net::SocketAddrV4>,
) -> Result<std::net::SocketAddrV4, String> {
    let listen = listen.ok_or(
        "--listen ADDR:PORT is needed: this machine's IPv4 address and a port the box can \
         reach (serve answers its iPXE and receives the installer's reports there)",
    )?;
    if listen.port() == 0 {
        return Err(format!(
            "--listen {listen}: give the port the box is to reach (the boot line names it)"
        ));
    }
    if advertise.unwrap_or(listen).ip().is_unspecified() {
        return Err(format!(
            "--listen {listen}: the box needs an address it can reach on its boot line; give \
             --advertise ADDR:PORT (this machine's address on the box's network)"
        ));
    }
    Ok(listen)
}

/// One disk the install erases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErasedDisk {
    /// Disk id of the hardware profile.
    pub id: String,
    /// Device the installer writes.
    pub device: String,
    /// Model.
    pub model: String,
    /// Size in bytes.
    pub size_bytes: u64,
}

/// What a reinstall will do to a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Host profile name.
    pub host: String,
    /// AMT origin (`ADDR:PORT`), and the jump host if any.
    pub vpro: String,
    /// Disks erased.
    pub disks: Vec<ErasedDisk>,
}

impl Plan {
    /// The plan for a host reached at `vpro`.
    pub fn new(host: &Host, vpro: String) -> Self {
        Plan {
            host: host.name.clone(),
            vpro,
            disks: host
                .disks
                .iter()
                .map(|d| ErasedDisk {
                    id: d.id.clone(),
                    device: d.device.clone(),
                    model: d.model.clone(),
                    size_bytes: d.size_bytes,
                })
                .collect(),
        }
    }

    /// The question asked before anything is changed.
    pub fn prompt(&self) -> String {
        let mut s = format!(
            "Reinstall {} (vPro/AMT {}): the box is PXE-booted into the installer, which ERASES:\n",
            self.host, self.vpro
        );
        for d in &self.disks {
            s.push_str(&format!(
                "  {} {} ({}, {:.0} GB)\n",
                d.id,
                d.device,
                d.model,
                d.size_bytes as f64 / 1e9
            ));
        }
        s.push_str(&format!("Type the host name ({}) to go on: ", self.host));
        s
    }

    /// True when the answer confirms (exactly the host name, surrounding blanks ignored).
    pub fn confirmed_by(&self, answer: &str) -> bool {
        answer.trim() == self.host
    }
}

/// Why `reinstall` will not start.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// `check` failed.
    #[error("refusing to reinstall {host}: the profiles do not check ({problems} problem(s)); run `picaboot check`")]
    Check {
        /// Host.
        host: String,
        /// Number of problems.
        problems: usize,
    },
    /// AMT did not answer.
    #[error("refusing to reinstall {host}: its vPro/AMT does not answer")]
    VproSilent {
        /// Host.
        host: String,
    },
    /// Not confirmed.
    #[error("reinstall of {host} not confirmed; nothing was changed")]
    NotConfirmed {
        /// Host.
        host: String,
    },
}

/// Follows installer phase reports: which milestone is current, and whether it overran.
#[derive(Debug, Clone)]
pub struct Follower {
    current: Milestone,
    since: Duration,
}

/// What a progress report or a clock tick means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A milestone was reached (not [`Milestone::Done`]).
    Entered(Milestone),
    /// The install finished.
    Done,
    /// Nothing new.
    Same,
    /// A phase took longer than its timeout.
    TimedOut {
        /// The milestone.
        phase: Milestone,
        /// Its limit.
        limit: Duration,
    },
    /// A report named a milestone already passed.
    Unexpected(String),
}

impl Default for Follower {
    fn default() -> Self {
        Follower {
            current: Milestone::ALL[0],
            since: Duration::ZERO,
        }
    }
}

impl Follower {
    /// The current milestone.
    pub fn phase(&self) -> Milestone {
        self.current
    }

    /// A report of `phase` at `at` (time since the power request).
    pub fn report(&mut self, phase: Milestone, at: Duration) -> Step {
        if phase.index() < self.current.index() {
            return Step::Unexpected(format!("{phase} after {}", self.current));
        }
        if phase == self.current && at > Duration::ZERO && self.since > Duration::ZERO {
            return Step::Same;
        }
        self.current = phase;
        self.since = at;
        match phase {
            Milestone::Done => Step::Done,
            m => Step::Entered(m),
        }
    }

    /// Checks the current milestone's timeout at `now`.
    pub fn tick(&self, now: Duration) -> Step {
        let (phase, limit) = (self.current, self.current.limit());
        if now.saturating_sub(self.since) > limit {
            Step::TimedOut { phase, limit }
        } else {
            Step::Same
        }
    }
}

impl crate::exit_class::ExitClass for Refusal {
    fn exit_class(&self) -> crate::exit_class::Class {
        use crate::exit_class::Class;
        match self {
            // Profiles that do not check, or an operator who did not confirm: bad input.
            Refusal::Check { .. } | Refusal::NotConfirmed { .. } => Class::User,
            // The box's AMT does not answer: the environment.
            Refusal::VproSilent { .. } => Class::Env,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            host: "alice".into(),
            vpro: "192.168.128.151:16992 (through jump host gw)".into(),
            disks: vec![
                ErasedDisk {
                    id: "ssd0".into(),
                    device: "/dev/sda".into(),
                    model: "SanDisk SSD Ultra II".into(),
                    size_bytes: 480_000_000_000,
                },
                ErasedDisk {
                    id: "hdd0".into(),
                    device: "/dev/sdc".into(),
                    model: "WD Red".into(),
                    size_bytes: 2_000_000_000_000,
                },
            ],
        }
    }

    #[test]
    fn prompt_names_host_vpro_and_every_disk() {
        let p = plan().prompt();
        assert!(p.contains("Reinstall alice (vPro/AMT 192.168.128.151:16992"));
        assert!(p.contains("ssd0 /dev/sda (SanDisk SSD Ultra II, 480 GB)"));
        assert!(p.contains("hdd0 /dev/sdc (WD Red, 2000 GB)"));
    }

    #[test]
    fn only_the_host_name_confirms() {
        let p = plan();
        assert!(p.confirmed_by("alice\n"));
        assert!(p.confirmed_by("  alice "));
        for no in ["", "y", "yes", "Alice", "bob", "alice alice"] {
            assert!(!p.confirmed_by(no), "{no:?}");
        }
    }

    #[test]
    fn the_followed_phases_are_the_install_proofs_then_done() {
        let mut want: Vec<Milestone> = Phase::ALL.into_iter().map(Milestone::Installer).collect();
        want.push(Milestone::Done);
        assert_eq!(Milestone::ALL.to_vec(), want);
    }

    #[test]
    fn phases_in_order_with_timeouts() {
        let mut f = Follower::default();
        let m = Duration::from_secs(60);
        let boot = Milestone::Installer(Phase::BootToNetwork);
        let parts = Milestone::Installer(Phase::Partitioning);
        assert_eq!(f.report(boot, m), Step::Entered(boot));
        assert_eq!(f.report(boot, 2 * m), Step::Same);
        assert_eq!(f.report(parts, 3 * m), Step::Entered(parts));
        assert_eq!(f.tick(20 * m), Step::Same);
        assert_eq!(
            f.tick(34 * m),
            Step::TimedOut {
                phase: parts,
                limit: 30 * m
            }
        );
        assert_eq!(
            f.report(boot, 35 * m),
            Step::Unexpected("boot-to-network after partitioning".into())
        );
        assert_eq!(f.report(Milestone::Done, 40 * m), Step::Done);
    }
}
