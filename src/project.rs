//! A checked project: profiles loaded and validated, then every host's storage planned, so that
//! every problem is known (and reported as `file:line: field: reason`) before anything renders.

use std::collections::BTreeMap;
use std::path::Path;

use crate::profile::{self, Diagnostics, Loaded, ProfileError};
use crate::storage::{self, partman::PartmanRecipe, Plan};

/// Profiles plus the derived storage plans.
#[derive(Debug, Clone)]
pub struct Project {
    /// Validated profiles and their sources.
    pub loaded: Loaded,
    /// Storage plan per host.
    pub plans: BTreeMap<String, Plan>,
    /// partman values per host.
    pub recipes: BTreeMap<String, PartmanRecipe>,
}

/// Command-line overrides applied after the profiles are validated and before planning.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `(disk id, device)`: install to another device than the profile names (a VM, a test).
    pub disk_devices: Vec<(String, String)>,
    /// Install from this Debian mirror instead of the profiles' (e.g. this machine's own).
    pub mirror: Option<String>,
    /// `(disk id, bytes)`: a disk of another size (a VM shaped like the box, scaled down).
    pub disk_sizes: Vec<(String, u64)>,
    /// `(group, volume, bytes)`: a fixed-size logical volume resized with its disks.
    pub volume_sizes: Vec<(String, String, u64)>,
}

/// Loads, validates and plans every host under `dir`.
pub fn open(dir: &Path) -> Result<Project, ProfileError> {
    open_with(dir, &Overrides::default())
}

/// Like [`open`], with overrides applied to every host.
pub fn open_with(dir: &Path, overrides: &Overrides) -> Result<Project, ProfileError> {
    let mut loaded = profile::load(dir)?;
    let mut diags = Diagnostics::default();
    // The same grammar as the profile's `disk-devices` (and the hardware's `device`), and the
    // same rule that no device is named for two disks.
    for (id, device) in &overrides.disk_devices {
        let bad_dev = profile::text::device_path(device).err();
        for (name, host) in loaded.profiles.hosts.iter_mut() {
            let src = &loaded.host_sources[name];
            let field = format!("disk-devices.{id}");
            match host.disks.iter_mut().find(|d| &d.id == id) {
                Some(_) if bad_dev.is_some() => diags.push(src.diag(
                    field,
                    format!(
                        "--disk {id}={device}: {}",
                        bad_dev.clone().unwrap_or_default()
                    ),
                )),
                Some(d) => d.device = device.clone(),
                None => diags.push(src.diag(
                    field,
                    format!("--disk {id}={device}: the hardware has no disk `{id}`"),
                )),
            }
        }
    }
    if !overrides.disk_devices.is_empty() {
        for (name, host) in &loaded.profiles.hosts {
            let src = &loaded.host_sources[name];
            let mut seen = std::collections::BTreeSet::new();
            for d in &host.disks {
                if !seen.insert(d.device.as_str()) {
                    diags.push(src.diag(
                        format!("disk-devices.{}", d.id),
                        format!(
                            "--disk: device {} is named for two disks (another --disk or the profile already uses it)",
                            d.device
                        ),
                    ));
                }
            }
        }
    }
    for (id, bytes) in &overrides.disk_sizes {
        for host in loaded.profiles.hosts.values_mut() {
            for d in host.disks.iter_mut().filter(|d| &d.id == id) {
                d.size_bytes = *bytes;
            }
        }
    }
    for (group, name, bytes) in &overrides.volume_sizes {
        for host in loaded.profiles.hosts.values_mut() {
            for v in host
                .storage
                .volumes
                .iter_mut()
                .filter(|v| &v.group == group && &v.name == name)
            {
                v.size = profile::Size::Bytes(*bytes);
            }
        }
    }
    if let Some(url) = &overrides.mirror {
        match profile::parse_mirror(url) {
            Ok(m) => {
                for host in loaded.profiles.hosts.values_mut() {
                    host.install.mirror = m.clone();
                }
            }
            Err(e) => diags.push(profile::Diagnostic {
                file: "--mirror".into(),
                line: 0,
                field: "install.mirror".into(),
                reason: e,
            }),
        }
    }
    if !diags.is_empty() {
        return Err(ProfileError::Invalid(diags.finish()));
    }
    let mut plans = BTreeMap::new();
    let mut recipes = BTreeMap::new();
    for (name, host) in &loaded.profiles.hosts {
        let src = &loaded.host_sources[name];
        match storage::plan(host) {
            Ok(plan) => {
                match storage::partman::recipe(&plan) {
                    Ok(r) => {
                        recipes.insert(name.clone(), r);
                    }
                    Err(e) => diags.push(src.diag(e.field, e.reason)),
                }
                plans.insert(name.clone(), plan);
            }
            Err(errors) => {
                for e in errors {
                    diags.push(src.diag(e.field, e.reason));
                }
            }
        }
    }
    if diags.is_empty() {
        // A host whose disks are resized here (a VM shaped like the box, scaled down) has no
        // room for its VMs' disks, and is not where they run: only their cores and memory,
        // which no override changes, are checked against it.
        let disks_as_profiled =
            overrides.disk_sizes.is_empty() && overrides.volume_sizes.is_empty();
        crate::vm::fit::verify(&loaded, &plans, disks_as_profiled, &mut diags);
    }
    if diags.is_empty() {
        Ok(Project {
            loaded,
            plans,
            recipes,
        })
    } else {
        Err(ProfileError::Invalid(diags.finish()))
    }
}
