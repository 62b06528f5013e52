//! Typed template contexts. Every template gets a struct, never a loose map, so that a field a
//! template needs is checked by the compiler and serialized every time.

use serde::Serialize;

use crate::cluster::Corosync;
use crate::profile::{Hardware, Host, Install, Network, Nic, NicRole, Stage};
use crate::project::Project;
use crate::storage::partman::PartmanRecipe;
use crate::storage::{ArrayPlan, VolumePlan};

/// `en_US.UTF-8` -> (`en`, `US`).
pub fn language_country(locale: &str) -> (String, String) {
    let base = locale.split(['.', '@']).next().unwrap_or(locale);
    let (l, c) = base.split_once('_').unwrap_or((base, ""));
    (l.to_string(), c.to_string())
}

/// The host as templates see it (the password hash is not part of it).
#[derive(Debug, Clone, Serialize)]
pub struct HostView {
    /// Host name.
    pub hostname: String,
    /// Domain.
    pub domain: String,
    /// FQDN.
    pub fqdn: String,
    /// Hardware profile name.
    pub hardware: String,
    /// NICs.
    pub nics: Vec<Nic>,
    /// GPT label.
    pub gpt: bool,
    /// Installer settings.
    pub install: Install,
    /// Cluster address.
    pub cluster_link: Option<crate::profile::ClusterLink>,
}

/// A `/etc/hosts` line.
#[derive(Debug, Clone, Serialize)]
pub struct Peer {
    /// Address.
    pub address: String,
    /// FQDN.
    pub fqdn: String,
    /// Short name.
    pub hostname: String,
}

/// A member of a first-boot array, with the script argument that can replace its disk.
#[derive(Debug, Clone, Serialize)]
pub struct FirstBootMember {
    /// Disk id.
    pub disk: String,
    /// Default device.
    pub device: String,
    /// Partition number.
    pub partition: u32,
    /// Position of the script argument that overrides the device (1-based).
    pub arg: usize,
}

/// A first-boot array.
#[derive(Debug, Clone, Serialize)]
pub struct FirstBootArray {
    /// Name.
    pub name: String,
    /// Device.
    pub device: String,
    /// Level.
    pub level: u32,
    /// UUID.
    pub uuid: String,
    /// md name as mdadm records it (`HOST:N`).
    pub md_name: String,
    /// The name given to `mdadm --create --name` (`N`; mdadm prefixes the homehost itself and
    /// refuses a `:` in the name).
    pub create_name: String,
    /// Volume group on it.
    pub volume_group: Option<String>,
    /// Filesystem on it.
    pub filesystem: Option<String>,
    /// Members.
    pub members: Vec<FirstBootMember>,
}

/// Context of the host-wide templates.
#[derive(Debug, Clone, Serialize)]
pub struct HostCtx<'a> {
    /// Profile file the host came from, relative to the profiles directory.
    pub source: String,
    /// The host.
    pub host: HostView,
    /// Its hardware.
    pub hardware: &'a Hardware,
    /// Layered install settings.
    pub install: &'a Install,
    /// Public network.
    pub network: &'a Network,
    /// The public NIC.
    pub public_nic: Option<&'a Nic>,
    /// The install NIC.
    pub install_nic: Option<&'a Nic>,
    /// /etc/hosts lines for cluster peers.
    pub peers: Vec<Peer>,
    /// partman values.
    pub recipe: &'a PartmanRecipe,
    /// Arrays the installer builds.
    pub install_arrays: Vec<&'a ArrayPlan>,
    /// Arrays the first-boot script builds.
    pub first_boot_arrays: Vec<FirstBootArray>,
    /// Volumes the first-boot script builds.
    pub first_boot_volumes: Vec<&'a VolumePlan>,
    /// One line summarising the layout, for comments.
    pub storage_summary: String,
    /// Root password hash (preseed only; never logged).
    pub root_password_hash: &'a str,
    /// Installer language.
    pub language: String,
    /// Installer country.
    pub country: String,
    /// Packages for pkgsel/include.
    pub packages: Vec<String>,
    /// Kernel parameters of the installed system (the profile's, plus the test console).
    pub kernel_params: Vec<String>,
    /// The test variant, when rendering for `picaboot test install`.
    pub test: Option<super::variant::TestVariant>,
    /// The installer's sources when they are the harness's.
    pub sources: Option<super::variant::InstallerSources>,
}

/// The cluster's nodes by their link addresses (the host alone when it has no cluster).
fn peers(project: &Project, host: &Host) -> Vec<Peer> {
    let profiles = &project.loaded.profiles;
    let mut peers: Vec<Peer> = Vec::new();
    let cluster_hosts: Vec<&Host> = match &host.cluster {
        Some(c) => profiles.clusters[c]
            .nodes
            .iter()
            .filter_map(|n| profiles.hosts.get(&n.host))
            .collect(),
        None => vec![host],
    };
    for h in cluster_hosts {
        if let Some(l) = &h.cluster_link {
            peers.push(Peer {
                address: l.address.addr().to_string(),
                fqdn: h.fqdn(),
                hostname: h.hostname.clone(),
            });
        }
    }
    peers
}

/// The arrays the first boot creates, each member numbered as an argument of the script.
fn first_boot_arrays(plan: &crate::storage::Plan) -> Vec<FirstBootArray> {
    let mut arg = 0;
    plan.arrays_at(Stage::FirstBoot)
        .map(|a| FirstBootArray {
            name: a.name.clone(),
            device: a.device.clone(),
            level: a.level,
            uuid: a.uuid.clone().unwrap_or_default(),
            md_name: a.md_name.clone(),
            create_name: a.name.trim_start_matches("md").to_string(),
            volume_group: match &a.content {
                crate::profile::ArrayContent::VolumeGroup(vg) => Some(vg.clone()),
                _ => None,
            },
            filesystem: match &a.content {
                crate::profile::ArrayContent::Filesystem { fs, .. } => Some(fs.clone()),
                _ => None,
            },
            members: a
                .members
                .iter()
                .map(|m| {
                    arg += 1;
                    FirstBootMember {
                        disk: m.disk.clone(),
                        device: m.device.clone(),
                        partition: m.partition,
                        arg,
                    }
                })
                .collect(),
        })
        .collect()
}

/// One line per array for the comments: `md0 RAID1 (ssd0+ssd1) = ext4 /`.
fn storage_summary(plan: &crate::storage::Plan) -> Vec<String> {
    plan.arrays
        .iter()
        .map(|a| {
            let what = match &a.content {
                crate::profile::ArrayContent::Filesystem { fs, mount } => {
                    format!("{fs} {mount}")
                }
                crate::profile::ArrayContent::VolumeGroup(vg) => format!("LVM VG {vg}"),
            };
            let disks: Vec<&str> = a.members.iter().map(|m| m.disk.as_str()).collect();
            format!("{} RAID{} ({}) = {what}", a.name, a.level, disks.join("+"))
        })
        .collect()
}

/// The packages the installer adds: the base set, the profile's, and corosync for a
/// standalone cluster.
fn packages(project: &Project, host: &Host) -> Vec<String> {
    let profiles = &project.loaded.profiles;
    let mut packages: Vec<String> = super::BASE_PACKAGES.iter().map(|s| s.to_string()).collect();
    for p in &host.install.packages {
        if !packages.contains(p) {
            packages.push(p.clone());
        }
    }
    // The backup pulls: rsync both ways, and rrsync (in rsync) is a python3 script.
    let backup = host
        .cluster
        .as_ref()
        .and_then(|c| profiles.clusters.get(c))
        .is_some_and(|c| c.backup.is_some());
    for p in ["rsync", "python3"] {
        if backup && !packages.iter().any(|q| q == p) {
            packages.push(p.to_string());
        }
    }
    // A standalone corosync.conf needs its daemon (and `corosync -t` to check it). Under
    // Proxmox, proxmox-ve brings its own corosync, and Debian's package would install an
    // /etc/corosync/corosync.conf that pmxcfs imports.
    let standalone = host
        .cluster
        .as_ref()
        .and_then(|c| profiles.clusters.get(c))
        .is_some_and(|c| c.manager == crate::profile::ClusterManager::Standalone);
    if standalone && !packages.iter().any(|p| p == "corosync") {
        packages.push("corosync".to_string());
    }
    packages
}

impl<'a> HostCtx<'a> {
    /// Builds the context of `host`.
    pub fn new(
        project: &'a Project,
        host: &'a Host,
        test: Option<&super::variant::TestVariant>,
        sources: Option<&super::variant::InstallerSources>,
    ) -> Self {
        let profiles = &project.loaded.profiles;
        let plan = &project.plans[&host.name];
        let peers = peers(project, host);
        let first_boot_arrays = first_boot_arrays(plan);
        let summary = storage_summary(plan);
        let (language, country) = language_country(&host.install.locale);
        let packages = packages(project, host);
        let mut kernel_params = host.install.kernel_params.clone();
        if let Some(t) = test {
            kernel_params.extend(t.console_params.iter().cloned());
        }
        HostCtx {
            source: format!("hosts/{}.toml", host.name),
            host: HostView {
                hostname: host.hostname.clone(),
                domain: host.domain.clone(),
                fqdn: host.fqdn(),
                hardware: host.hardware.clone(),
                nics: host.nics.clone(),
                gpt: host.gpt,
                install: host.install.clone(),
                cluster_link: host.cluster_link.clone(),
            },
            hardware: &profiles.hardware[&host.hardware],
            install: &host.install,
            network: &host.network,
            public_nic: host.nics.iter().find(|n| n.name == host.network.interface),
            install_nic: host.nic_with_role(NicRole::Install),
            peers,
            recipe: &project.recipes[&host.name],
            install_arrays: plan.arrays_at(Stage::Install).collect(),
            first_boot_arrays,
            first_boot_volumes: plan.volumes_at(Stage::FirstBoot).collect(),
            storage_summary: summary.join("; "),
            root_password_hash: &host.root_password_hash,
            language,
            country,
            packages,
            kernel_params,
            test: test.cloned(),
            sources: sources.cloned(),
        }
    }
}

/// Context of a `.link` file.
#[derive(Debug, Clone, Serialize)]
pub struct NicCtx<'a> {
    /// Profile file.
    pub source: &'a str,
    /// The NIC.
    pub nic: &'a Nic,
}

/// Context of the Proxmox files (sources, first-boot script and unit).
#[derive(Debug, Clone, Serialize)]
pub struct ProxmoxCtx<'a> {
    /// Cluster profile file.
    pub source: String,
    /// Debian suite of the host.
    pub suite: &'a str,
    /// Mail name for postfix (the host's FQDN).
    pub fqdn: String,
    /// The repository.
    pub repo: &'a crate::profile::ProxmoxRepo,
}

/// Context of corosync.conf.
#[derive(Debug, Clone, Serialize)]
pub struct CorosyncCtx<'a> {
    /// The data.
    pub corosync: &'a Corosync,
}

/// A file the late command installs.
#[derive(Debug, Clone, Serialize)]
pub struct FileCtx {
    /// Path relative to `/`.
    pub path: String,
    /// Octal mode.
    pub mode: String,
}

/// Context of late-command.sh.
#[derive(Debug, Clone, Serialize)]
pub struct LateCtx<'a> {
    /// The host.
    pub host: &'a HostView,
    /// Files to install.
    pub files: Vec<FileCtx>,
    /// systemd units to enable.
    pub enable_units: Vec<String>,
    /// The test variant, if any.
    pub test: Option<&'a super::variant::TestVariant>,
}

/// One profile disk as `picaboot-find-disks` matches it.
#[derive(Debug, Clone, Serialize)]
pub struct DiskMatch {
    /// Disk id.
    pub id: String,
    /// 1 for a rotating disk, 0 for an SSD.
    pub rotational: u8,
    /// Smallest size accepted (bytes).
    pub min_bytes: u64,
    /// Largest size accepted (bytes).
    pub max_bytes: u64,
    /// Model glob (`*` when the profile gives none).
    pub model_glob: String,
    /// Pinned serial.
    pub serial: Option<String>,
    /// Human description for messages.
    pub what: String,
}

/// Unpinned disks that share their criteria: more matching devices than ids is ambiguous.
#[derive(Debug, Clone, Serialize)]
pub struct DiskGroup {
    /// 1 for rotating.
    pub rotational: u8,
    /// Smallest size.
    pub min_bytes: u64,
    /// Largest size.
    pub max_bytes: u64,
    /// Model glob.
    pub model_glob: String,
    /// The ids, space separated.
    pub ids: String,
    /// Description.
    pub what: String,
}

/// Context of `picaboot-find-disks`.
#[derive(Debug, Clone, Serialize)]
pub struct FindDisksCtx<'a> {
    /// Profile file.
    pub source: &'a str,
    /// The host.
    pub host: &'a HostView,
    /// Every disk of the hardware, in profile order.
    pub disks: Vec<DiskMatch>,
    /// Groups of unpinned disks with the same criteria.
    pub groups: Vec<DiskGroup>,
}

impl<'a> FindDisksCtx<'a> {
    /// The matching criteria of `host`'s disks: role, size within 2 %, model glob, serial.
    pub fn new(source: &'a str, view: &'a HostView, host: &Host) -> Self {
        let disks: Vec<DiskMatch> = host
            .disks
            .iter()
            .map(|d| DiskMatch {
                id: d.id.clone(),
                rotational: u8::from(d.rotational()),
                min_bytes: d.size_bytes / 100 * 98,
                max_bytes: d.size_bytes / 100 * 102,
                model_glob: d.model_match.clone().unwrap_or_else(|| "*".into()),
                serial: d.serial.clone(),
                what: format!(
                    "{}, {:.1} GB{}",
                    if d.rotational() { "rotating" } else { "SSD" },
                    d.size_bytes as f64 / 1e9,
                    d.model_match
                        .as_ref()
                        .map(|m| format!(", model {m}"))
                        .unwrap_or_default()
                ),
            })
            .collect();
        let mut groups: Vec<DiskGroup> = Vec::new();
        for d in disks.iter().filter(|d| d.serial.is_none()) {
            match groups.iter_mut().find(|g| {
                g.rotational == d.rotational
                    && g.min_bytes == d.min_bytes
                    && g.max_bytes == d.max_bytes
                    && g.model_glob == d.model_glob
            }) {
                Some(g) => {
                    g.ids.push(' ');
                    g.ids.push_str(&d.id);
                }
                None => groups.push(DiskGroup {
                    rotational: d.rotational,
                    min_bytes: d.min_bytes,
                    max_bytes: d.max_bytes,
                    model_glob: d.model_glob.clone(),
                    ids: d.id.clone(),
                    what: d.what.clone(),
                }),
            }
        }
        FindDisksCtx {
            source,
            host: view,
            disks,
            groups,
        }
    }
}

/// The partman values with `@ID@` (disk) and `@ID@pN` (partition) tokens in place of devices,
/// resolved by the installer once it has found the disks by identity.
#[derive(Debug, Clone, Serialize)]
pub struct PartmanTokens {
    /// Install-time disk ids.
    pub ids: Vec<String>,
    /// `partman-auto/disk`.
    pub disks: String,
    /// `partman-auto-raid/recipe`, one line.
    pub raid: String,
    /// `grub-installer/bootdev`.
    pub grub: String,
}

impl PartmanTokens {
    /// Tokenizes the recipe of `host` (its device hints are unique, checked by validation).
    pub fn new(host: &Host, recipe: &PartmanRecipe) -> Self {
        let tokenize_device = |dev: &str| -> String {
            for d in &host.disks {
                if dev == d.device {
                    return format!("@{}@", d.id);
                }
                let first = crate::storage::partition_device(&d.device, 0);
                let prefix = &first[..first.len() - 1];
                if let Some(n) = dev.strip_prefix(prefix) {
                    if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                        return format!("@{}@p{n}", d.id);
                    }
                }
            }
            dev.to_string()
        };
        let tokenize = |text: &str| -> String {
            text.split(' ')
                .map(|word| {
                    word.split('#')
                        .map(tokenize_device)
                        .collect::<Vec<_>>()
                        .join("#")
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        let ids = host
            .disks
            .iter()
            .filter(|d| {
                recipe.disks.split(' ').any(|x| x == d.device)
                    || recipe.grub_devices.split(' ').any(|x| x == d.device)
            })
            .map(|d| d.id.clone())
            .collect();
        PartmanTokens {
            ids,
            disks: tokenize(&recipe.disks),
            raid: tokenize(&recipe.raid_recipe.join(" ")),
            grub: tokenize(&recipe.grub_devices),
        }
    }
}

/// Context of `partman-early.sh`.
#[derive(Debug, Clone, Serialize)]
pub struct PartmanEarlyCtx<'a> {
    /// Profile file.
    pub source: &'a str,
    /// The host.
    pub host: &'a HostView,
    /// Tokenized partman values.
    pub tokens: PartmanTokens,
    /// Where to report (`…/progress/HOST?x=1`, test variant).
    pub progress_url: Option<String>,
    /// md resync limit during the install (KiB/s, test variant).
    pub resync_limit_kib: Option<u32>,
}
