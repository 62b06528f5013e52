//! Install phases from the installer's syslog (copied to the VM's second serial port under
//! test, received over UDP by `reinstall`): main-menu logs `Menu item 'NAME' selected` as each
//! step starts.

use std::collections::VecDeque;

/// A phase of an install, in order: each starts when main-menu selects one of its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The installer boots, detects its NIC and configures the network.
    BootToNetwork,
    /// It downloads its components.
    DownloadInstaller,
    /// partman partitions the disks.
    Partitioning,
    /// debootstrap installs the base system.
    BaseSystem,
    /// apt is configured on the target.
    AptSetup,
    /// tasksel/pkgsel installs the packages.
    Packages,
    /// GRUB is installed.
    Grub,
    /// The late command runs and the installer ends.
    FinishInstall,
}

impl Phase {
    /// Every phase, in order.
    pub const ALL: [Phase; 8] = [
        Phase::BootToNetwork,
        Phase::DownloadInstaller,
        Phase::Partitioning,
        Phase::BaseSystem,
        Phase::AptSetup,
        Phase::Packages,
        Phase::Grub,
        Phase::FinishInstall,
    ];

    /// The phase's name in reports and logs (`base-system`).
    pub fn name(self) -> &'static str {
        match self {
            Phase::BootToNetwork => "boot-to-network",
            Phase::DownloadInstaller => "download-installer",
            Phase::Partitioning => "partitioning",
            Phase::BaseSystem => "base-system",
            Phase::AptSetup => "apt-setup",
            Phase::Packages => "packages",
            Phase::Grub => "grub",
            Phase::FinishInstall => "finish-install",
        }
    }

    /// The main-menu items whose selection starts this phase.
    pub fn menu_items(self) -> &'static [&'static str] {
        match self {
            Phase::BootToNetwork => &["ethdetect", "netcfg"],
            Phase::DownloadInstaller => &["download-installer"],
            Phase::Partitioning => &["partman-base"],
            Phase::BaseSystem => &["bootstrap-base"],
            Phase::AptSetup => &["apt-setup-udeb"],
            Phase::Packages => &["pkgsel"],
            Phase::Grub => &["grub-installer"],
            Phase::FinishInstall => &["finish-install"],
        }
    }

    /// The phase named `name`, if any.
    pub fn from_name(name: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The phase a syslog line starts, if any.
pub fn phase_started(line: &str) -> Option<Phase> {
    let i = line.find("Menu item '")?;
    let rest = &line[i + "Menu item '".len()..];
    let item = &rest[..rest.find('\'')?];
    if !rest.contains("selected") {
        return None;
    }
    Phase::ALL
        .into_iter()
        .find(|p| p.menu_items().contains(&item))
}

/// A failure the installer's log names (a preseeded command that failed, a disk not found).
pub fn failure(line: &str) -> Option<String> {
    if let Some(i) = line.find("DISKS FAILED:") {
        return Some(format!("disks: {}", line[i + 13..].trim()));
    }
    for marker in [
        "Failed to run preseeded command",
        "Installation step failed",
        "An installation step failed",
    ] {
        if line.contains(marker) {
            return Some(line.trim().to_string());
        }
    }
    None
}

/// What one syslog line meant to an install being followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A phase began.
    Phase(Phase),
    /// The installer logged a failure.
    Failed(String),
}

/// Follows an installer's syslog line by line: phase changes, failures, and the last lines
/// (for the report when something fails).
#[derive(Debug, Clone)]
pub struct Tracker {
    phase: Option<Phase>,
    last: VecDeque<String>,
    keep: usize,
}

impl Tracker {
    /// A tracker keeping the last `keep` lines.
    pub fn new(keep: usize) -> Self {
        Tracker {
            phase: None,
            last: VecDeque::with_capacity(keep),
            keep,
        }
    }

    /// The phase begun last, if any.
    pub fn phase(&self) -> Option<Phase> {
        self.phase
    }

    /// Takes one line; returns what it meant (a phase already current is not repeated).
    pub fn line(&mut self, line: &str) -> Option<Event> {
        if self.last.len() == self.keep {
            self.last.pop_front();
        }
        if self.keep > 0 {
            self.last.push_back(line.to_string());
        }
        if let Some(f) = failure(line) {
            return Some(Event::Failed(f));
        }
        let p = phase_started(line)?;
        if self.phase == Some(p) {
            return None;
        }
        self.phase = Some(p);
        Some(Event::Phase(p))
    }

    /// The last lines received, oldest first.
    pub fn last_lines(&self) -> Vec<String> {
        self.last.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn menu_items_map_to_phases() {
        let l = "Dec  1 20:11:02 main-menu[312]: INFO: Menu item 'partman-base' selected";
        assert_eq!(phase_started(l), Some(Phase::Partitioning));
        assert_eq!(
            phase_started("main-menu: INFO: Menu item 'bootstrap-base' selected"),
            Some(Phase::BaseSystem)
        );
        assert_eq!(phase_started("Menu item 'di-utils-shell' selected"), None);
        assert_eq!(phase_started("nothing here"), None);
    }

    #[test]
    fn failures_are_named() {
        assert_eq!(
            failure("picaboot: DISKS FAILED: picaboot-find-disks: disk ssd1 (SSD) matches none"),
            Some("disks: picaboot-find-disks: disk ssd1 (SSD) matches none".into())
        );
        assert!(failure("all good").is_none());
    }

    #[test]
    fn tracker_reports_each_phase_once_and_keeps_the_last_lines() {
        let mut t = Tracker::new(2);
        assert_eq!(t.line("kernel: eth0 up"), None);
        assert_eq!(
            t.line("main-menu[1]: INFO: Menu item 'netcfg' selected"),
            Some(Event::Phase(Phase::BootToNetwork))
        );
        assert_eq!(
            t.line("main-menu[1]: INFO: Menu item 'ethdetect' selected"),
            None
        );
        assert_eq!(
            t.line("main-menu[1]: INFO: Menu item 'partman-base' selected"),
            Some(Event::Phase(Phase::Partitioning))
        );
        assert_eq!(
            t.line("log-output: Failed to run preseeded command"),
            Some(Event::Failed(
                "log-output: Failed to run preseeded command".into()
            ))
        );
        assert_eq!(t.phase(), Some(Phase::Partitioning));
        assert_eq!(
            t.last_lines(),
            [
                "main-menu[1]: INFO: Menu item 'partman-base' selected",
                "log-output: Failed to run preseeded command"
            ]
        );
    }
}
