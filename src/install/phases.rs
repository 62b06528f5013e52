//! Install phases from the installer's syslog (copied to the VM's second serial port under
//! test, received over UDP by `reinstall`): main-menu logs `Menu item 'NAME' selected` as each
//! step starts.

use std::collections::VecDeque;

/// The phases of an install, in order, with the main-menu items that start them.
pub const PHASES: &[(&str, &[&str])] = &[
    ("boot-to-network", &["ethdetect", "netcfg"]),
    ("download-installer", &["download-installer"]),
    ("partitioning", &["partman-base"]),
    ("base-system", &["bootstrap-base"]),
    ("apt-setup", &["apt-setup-udeb"]),
    ("packages", &["pkgsel"]),
    ("grub", &["grub-installer"]),
    ("finish-install", &["finish-install"]),
];

/// The phase a syslog line starts, if any.
pub fn phase_started(line: &str) -> Option<&'static str> {
    let i = line.find("Menu item '")?;
    let rest = &line[i + "Menu item '".len()..];
    let item = &rest[..rest.find('\'')?];
    if !rest.contains("selected") {
        return None;
    }
    PHASES
        .iter()
        .find(|(_, items)| items.contains(&item))
        .map(|(p, _)| *p)
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
    /// A phase of [`PHASES`] began.
    Phase(&'static str),
    /// The installer logged a failure.
    Failed(String),
}

/// Follows an installer's syslog line by line: phase changes, failures, and the last lines
/// (for the report when something fails).
#[derive(Debug, Clone)]
pub struct Tracker {
    phase: Option<&'static str>,
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
    pub fn phase(&self) -> Option<&'static str> {
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
        assert_eq!(phase_started(l), Some("partitioning"));
        assert_eq!(
            phase_started("main-menu: INFO: Menu item 'bootstrap-base' selected"),
            Some("base-system")
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
            Some(Event::Phase("boot-to-network"))
        );
        assert_eq!(
            t.line("main-menu[1]: INFO: Menu item 'ethdetect' selected"),
            None
        );
        assert_eq!(
            t.line("main-menu[1]: INFO: Menu item 'partman-base' selected"),
            Some(Event::Phase("partitioning"))
        );
        assert_eq!(
            t.line("log-output: Failed to run preseeded command"),
            Some(Event::Failed(
                "log-output: Failed to run preseeded command".into()
            ))
        );
        assert_eq!(t.phase(), Some("partitioning"));
        assert_eq!(
            t.last_lines(),
            [
                "main-menu[1]: INFO: Menu item 'partman-base' selected",
                "log-output: Failed to run preseeded command"
            ]
        );
    }
}
