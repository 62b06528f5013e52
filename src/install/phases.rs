//! Install phases from the installer's syslog (copied to the VM's second serial port):
//! main-menu logs `Menu item 'NAME' selected` as each step starts.

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
}
