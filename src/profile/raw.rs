//! The profile files exactly as written: serde structs, unknown keys rejected.
//!
//! Nothing here is checked beyond TOML types; [`super::validate`] turns these into the typed
//! model and names every problem with its file, line and field.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Installer settings that may appear in `site.toml`, a hardware profile or a host profile;
/// a later layer overrides an earlier one key by key (site < hardware < host).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawInstall {
    /// Debian suite codename, e.g. `trixie`.
    pub suite: Option<String>,
    /// Debian mirror URL (`http://host/debian`).
    pub mirror: Option<String>,
    /// HTTP proxy for the installer; empty string for none.
    pub proxy: Option<String>,
    /// System locale, e.g. `en_US.UTF-8`.
    pub locale: Option<String>,
    /// Console keyboard layout (XKB name), e.g. `fr`.
    pub keyboard: Option<String>,
    /// Time zone, e.g. `Europe/Paris`.
    pub timezone: Option<String>,
    /// Installer frontend: `gtk` (graphical) or `text`.
    pub frontend: Option<String>,
    /// Kernel parameters for the installed system.
    pub kernel_params: Option<Vec<String>>,
    /// Extra packages installed with the base system.
    pub packages: Option<Vec<String>>,
}

/// `site.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawSite {
    /// Organisation name, used in comments of rendered files.
    pub organisation: String,
    /// Installer defaults for every host.
    #[serde(default)]
    pub install: RawInstall,
    /// How the vPro/AMT interfaces are reached.
    pub vpro: Option<RawSiteVpro>,
}

/// `[vpro]` of `site.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawSiteVpro {
    /// SSH jump host in front of the management network (`[user@]host[:port]` or an ssh
    /// config alias); AMT is then reached with `ssh -W ADDR:PORT JUMP`.
    pub jump_host: Option<String>,
}

/// `hardware/NAME.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawHardware {
    /// Board model.
    pub board: String,
    /// CPU model.
    pub cpu: String,
    /// CPU cores.
    pub cpu_cores: u32,
    /// Installed memory in GiB.
    pub memory_gib: u32,
    /// `bios` or `uefi`.
    pub firmware: String,
    /// `gpt` or `msdos`.
    pub partition_table: String,
    /// Disks, in their controller order.
    #[serde(default)]
    pub disks: Vec<RawDisk>,
    /// Network interface cards.
    #[serde(default)]
    pub nics: Vec<RawNicModel>,
    /// Installer settings this hardware needs (graphical frontend, kernel parameters).
    #[serde(default)]
    pub install: RawInstall,
}

/// One disk of a hardware profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawDisk {
    /// Identifier used by host storage layouts (`ssd0`).
    pub id: String,
    /// `ssd` or `hdd`.
    pub role: String,
    /// Disk model.
    pub model: String,
    /// Capacity: bytes as an integer, or a string with a unit (`480GB`, `2TB`, `8GiB`).
    pub size: toml::Value,
    /// Device name the installer would see in controller order (`/dev/sda`): a hint only
    /// (disks are found by identity at install time); default `/dev/sd<a + index>`.
    pub device: Option<String>,
    /// The model string as the kernel reports it (`/sys/block/X/device/model`), matched with
    /// shell glob patterns (`SanDisk SDSSDHII*`); absent: any model.
    pub model_match: Option<String>,
}

/// One NIC of a hardware profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawNicModel {
    /// Name pinned on the installed system (`eth0`).
    pub name: String,
    /// NIC model.
    pub model: String,
    /// Linux driver.
    pub driver: String,
    /// `install` (DHCP during the install) or `public` (addresses after install).
    pub role: String,
    /// True when this NIC carries Intel vPro/AMT.
    #[serde(default)]
    pub vpro: bool,
}

/// `hosts/NAME.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawHost {
    /// Short host name.
    pub hostname: String,
    /// DNS domain.
    pub domain: String,
    /// Name of a file in `hardware/` (without `.toml`).
    pub hardware: String,
    /// Name of a file in `clusters/`, if the host is a cluster member.
    pub cluster: Option<String>,
    /// Root password as a crypt(3) hash (`$6$…`, `$y$…`); never plaintext.
    pub root_password_hash: String,
    /// Root's SSH public keys.
    #[serde(default)]
    pub ssh_keys: Vec<String>,
    /// Per-host installer overrides.
    #[serde(default)]
    pub install: RawInstall,
    /// MAC address per NIC name of the hardware profile.
    pub nics: BTreeMap<String, RawHostNic>,
    /// Disk device overrides per disk id (a VM may name them differently).
    #[serde(default)]
    pub disk_devices: BTreeMap<String, String>,
    /// Serial number per disk id (`ID_SERIAL_SHORT`): pins exactly which disk is which.
    #[serde(default)]
    pub disk_serials: BTreeMap<String, String>,
    /// Intel vPro/AMT management.
    pub vpro: Option<RawVpro>,
    /// Public networking, written to rc.local.
    pub network: RawNetwork,
    /// Private cluster address.
    pub cluster_link: Option<RawClusterLink>,
    /// Storage layout.
    pub storage: RawStorage,
}

/// A host's NIC.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawHostNic {
    /// MAC address, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// True while the MAC is an invented placeholder to replace with the real one.
    #[serde(default)]
    pub placeholder: bool,
}

/// vPro/AMT settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawVpro {
    /// The AMT address on the management network.
    pub address: String,
    /// AMT's port: 16992 (HTTP, the default) or 16993 (TLS, the default with `tls-sha256`).
    pub port: Option<u16>,
    /// TLS with AMT's (self-signed) certificate pinned by this SHA-256 fingerprint (hex,
    /// colons allowed).
    pub tls_sha256: Option<String>,
}

/// Public networking.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawNetwork {
    /// NIC (by hardware name) that carries the public addresses.
    pub interface: String,
    /// Bridge over `interface` that holds the addresses when the host runs VMs.
    pub bridge: Option<String>,
    /// Seconds rc.local waits before configuring (the wiki's `sleep 3`).
    #[serde(default)]
    pub settle_seconds: Option<u32>,
    /// Main IPv4 address with prefix.
    pub ipv4: String,
    /// IPv4 default gateway.
    pub ipv4_gateway: String,
    /// Reach the gateway on-link even though it is outside the address's prefix.
    #[serde(default)]
    pub ipv4_onlink: bool,
    /// Main IPv6 address with prefix.
    pub ipv6: Option<String>,
    /// IPv6 link-local address with prefix.
    pub ipv6_link_local: Option<String>,
    /// IPv6 default gateway (usually link-local).
    pub ipv6_gateway: Option<String>,
    /// Nameservers written to /etc/resolv.conf.
    #[serde(default)]
    pub nameservers: Vec<String>,
    /// Extra addresses routed to this host.
    #[serde(default)]
    pub routed: Vec<RawRouted>,
    /// NAT bridge for VMs on private addresses.
    pub nat_bridge: Option<RawNatBridge>,
    /// DNAT port forwards from the public side to private VMs.
    #[serde(default)]
    pub port_forwards: Vec<RawPortForward>,
}

/// An extra routed address set.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawRouted {
    /// IPv4 address with prefix.
    pub ipv4: String,
    /// IPv6 address with prefix.
    pub ipv6: Option<String>,
    /// IPv6 link-local next hop the provider routes to.
    pub ipv6_link_local: Option<String>,
    /// What the address serves.
    #[serde(default)]
    pub description: String,
}

/// NAT bridge for VMs.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawNatBridge {
    /// Bridge name.
    pub name: String,
    /// Gateway address of the private network, with prefix.
    pub address: String,
    /// Enable proxy ARP on the bridge.
    #[serde(default)]
    pub proxy_arp: bool,
}

/// One DNAT rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawPortForward {
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Public port.
    pub port: i64,
    /// Private destination `ADDRESS:PORT`.
    pub to: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
}

/// The private cluster address.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawClusterLink {
    /// Interface (NIC name or bridge name) carrying it.
    pub interface: String,
    /// Address with prefix.
    pub address: String,
}

/// Storage layout.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawStorage {
    /// Disks that receive a boot loader.
    pub boot_disks: Vec<String>,
    /// Software RAID arrays.
    #[serde(default)]
    pub arrays: Vec<RawArray>,
    /// LVM logical volumes.
    #[serde(default)]
    pub volumes: Vec<RawVolume>,
}

/// One md array; each member disk gets one partition for it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawArray {
    /// `md0`, `md1`, …
    pub name: String,
    /// RAID level; `1` (mirror) is supported.
    pub level: i64,
    /// Member disk ids.
    pub disks: Vec<String>,
    /// Partition size on each member: a size with unit, or `rest`.
    pub size: String,
    /// `install` (created by the installer) or `first-boot` (by the first-boot script).
    #[serde(default = "default_stage")]
    pub stage: String,
    /// Filesystem put directly on the array (`ext2`, `ext4`), or none.
    pub filesystem: Option<String>,
    /// Mount point of that filesystem.
    pub mount: Option<String>,
    /// LVM volume group created on the array instead of a filesystem.
    pub volume_group: Option<String>,
}

fn default_stage() -> String {
    "install".to_string()
}

/// One LVM logical volume.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawVolume {
    /// Volume group.
    pub group: String,
    /// Logical volume name.
    pub name: String,
    /// A size with unit, or `rest`.
    pub size: String,
    /// `ext4`, `ext2`, `xfs` or `swap`.
    pub filesystem: String,
    /// Mount point (none for swap).
    pub mount: Option<String>,
}

/// `clusters/NAME.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawCluster {
    /// corosync `cluster_name`.
    pub name: String,
    /// Encrypt and authenticate cluster traffic.
    pub crypto: bool,
    /// Who owns corosync.conf on the nodes: `proxmox` (pmxcfs, `/etc/pve`; nothing is written
    /// to `/etc/corosync` at install time) or `standalone` (picaboot installs it).
    pub manager: String,
    /// Quorum: `two-node` (votequorum's two_node, which implies wait_for_all) or `qdevice`
    /// (a corosync-qnetd host casts the third vote).
    pub quorum: String,
    /// Address of the corosync-qnetd host, with `quorum = "qdevice"`.
    pub qnetd: Option<String>,
    /// The Proxmox VE repository, with `manager = "proxmox"`.
    pub proxmox: Option<RawProxmox>,
    /// Transport; by default the one the suite's corosync wants (`knet` for corosync 3).
    pub transport: Option<String>,
    /// Members.
    pub nodes: Vec<RawNode>,
    /// Backups: vzdump to a local directory, each node pulling the other's dumps.
    pub backup: Option<RawBackup>,
}

/// `[backup]` of a cluster profile (002 §14).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawBackup {
    /// Proxmox storage id of the backup directory (`save`).
    pub storage: String,
    /// That directory, a mount point on every node (`/SAVE`).
    pub path: String,
    /// Time of day of the vzdump job, `HH:MM`.
    pub schedule: String,
    /// vzdump's `prune-backups keep-daily`.
    pub keep_daily: i64,
    /// vzdump mode: `snapshot`, `suspend` or `stop`.
    pub mode: String,
    /// Per node: the time of day, `HH:MM`, it pulls the other node's dumps.
    pub pull_at: std::collections::BTreeMap<String, String>,
}

/// `[proxmox]` of a cluster profile: where Proxmox VE comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawProxmox {
    /// Repository URL (`http://download.proxmox.com/debian/pve`).
    pub repository: String,
    /// Components; `["pve-no-subscription"]` when not given.
    pub components: Option<Vec<String>>,
    /// URL of the repository's signing keyring.
    pub keyring_url: String,
    /// SHA-256 of that keyring file, as Proxmox publishes it.
    pub keyring_sha256: String,
}

/// One cluster member.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawNode {
    /// Host profile name.
    pub host: String,
    /// corosync node id (positive).
    pub nodeid: i64,
    /// Quorum votes.
    #[serde(default = "one")]
    pub votes: i64,
}

fn one() -> i64 {
    1
}

/// `clusters/NAME.lock.toml`: the corosync `config_version` record kept beside the cluster.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawClusterLock {
    /// The `config_version` last rendered.
    pub config_version: u64,
    /// sha256 of the corosync.conf rendered with that version, version line excluded.
    pub content_sha256: String,
}

/// `vms/NAME.toml`: a VM on one of the cluster's nodes.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawVm {
    /// Short host name of the VM.
    pub hostname: String,
    /// DNS domain.
    pub domain: String,
    /// Host profile name of the node it runs on.
    pub node: String,
    /// Proxmox VM id (100 to 999999999).
    pub vmid: i64,
    /// Virtual CPU cores.
    pub cores: i64,
    /// Memory (`8GiB`).
    pub memory: String,
    /// What the VM is for (`services`, `registry`, `monitoring`): read by the services layer.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Root password as a crypt(3) hash; never plaintext.
    pub root_password_hash: String,
    /// Root's SSH public keys.
    pub ssh_keys: Vec<String>,
    /// Nameservers of the VM.
    #[serde(default)]
    pub nameservers: Vec<String>,
    /// The system disk and the data disk.
    pub disks: RawVmDisks,
    /// NICs in order (net0, net1, …).
    pub nics: Vec<RawVmNic>,
}

/// A VM's disks.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawVmDisks {
    /// The system disk (the image picaboot builds, grown to this size).
    pub system: RawVmDisk,
    /// The data disk, if any: one LVM volume group with one volume over all of it.
    pub data: Option<RawVmDataDisk>,
}

/// A VM's system disk.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawVmDisk {
    /// Size (`40GiB`).
    pub size: String,
    /// Proxmox storage holding it (default `local`: /var/lib/vz on the node).
    pub storage: Option<String>,
}

/// A VM's data disk.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawVmDataDisk {
    /// Size (`200GiB`).
    pub size: String,
    /// Proxmox storage holding it (default `local`).
    pub storage: Option<String>,
    /// Volume group over the whole disk.
    pub volume_group: String,
    /// Logical volume taking all of it.
    pub volume: String,
    /// Filesystem (`ext4`).
    pub filesystem: String,
    /// Mount point.
    pub mount: String,
}

/// A VM's NIC.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawVmNic {
    /// The node's bridge it is plugged into (`vmbr0` public, `vmbr1` private).
    pub bridge: String,
    /// MAC address.
    pub mac: String,
    /// IPv4 address with prefix: one routed to the node (public), or one inside the node's
    /// NAT bridge network (private).
    pub ipv4: Option<String>,
    /// IPv4 default gateway: the ISP's for a public address, the NAT bridge's for a private one.
    pub ipv4_gateway: Option<String>,
    /// IPv6 address with prefix (public addresses only).
    pub ipv6: Option<String>,
    /// IPv6 link-local address the ISP routes the addresses to.
    pub ipv6_link_local: Option<String>,
    /// IPv6 default gateway (the ISP's link-local router).
    pub ipv6_gateway: Option<String>,
}
