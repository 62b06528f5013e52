//! The validated profile model: every value parsed, every reference resolved.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Serialize;

/// Installer settings after layering site < hardware < host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Install {
    /// Debian suite codename.
    pub suite: String,
    /// Debian mirror: scheme, host and directory.
    pub mirror: Mirror,
    /// HTTP proxy URL, if any.
    pub proxy: Option<String>,
    /// Locale, e.g. `en_US.UTF-8`.
    pub locale: String,
    /// XKB keyboard layout.
    pub keyboard: String,
    /// Time zone.
    pub timezone: String,
    /// Installer frontend for the real machine.
    pub frontend: Frontend,
    /// Kernel parameters for the installed system.
    pub kernel_params: Vec<String>,
    /// Extra packages.
    pub packages: Vec<String>,
}

/// A Debian mirror split the way the installer asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mirror {
    /// `http` or `https`.
    pub protocol: String,
    /// Host name (and port).
    pub hostname: String,
    /// Directory, starting with `/`.
    pub directory: String,
}

impl Mirror {
    /// The mirror as one URL.
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.protocol, self.hostname, self.directory)
    }
}

/// Debian installer frontend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Frontend {
    /// The graphical installer (needed on the vPro console).
    Gtk,
    /// The text installer (serial consoles, tests).
    Text,
}

/// Firmware boot mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Firmware {
    /// Legacy BIOS (GPT needs a bios_grub partition).
    Bios,
    /// UEFI.
    Uefi,
}

/// Disk role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskRole {
    /// Solid-state disk.
    Ssd,
    /// Rotating disk.
    Hdd,
}

/// A disk of a machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disk {
    /// Identifier (`ssd0`).
    pub id: String,
    /// Role.
    pub role: DiskRole,
    /// Model.
    pub model: String,
    /// Capacity in bytes.
    pub size_bytes: u64,
    /// Device hint (the name in controller order); disks are matched by identity.
    pub device: String,
    /// Glob over the kernel's model string, if the profile gives one.
    pub model_match: Option<String>,
    /// Serial number pinned by the host profile, if any.
    pub serial: Option<String>,
}

impl Disk {
    /// True for a rotating disk (`/sys/block/X/queue/rotational` = 1).
    pub fn rotational(&self) -> bool {
        self.role == DiskRole::Hdd
    }
}

/// Role of a NIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NicRole {
    /// DHCP during the install only; reserved for vPro afterwards.
    Install,
    /// Carries the public addresses after the install.
    Public,
}

/// A hardware profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hardware {
    /// Profile name (file stem).
    pub name: String,
    /// Board model.
    pub board: String,
    /// CPU model.
    pub cpu: String,
    /// CPU cores.
    pub cpu_cores: u32,
    /// Memory in GiB.
    pub memory_gib: u32,
    /// Firmware boot mode.
    pub firmware: Firmware,
    /// True for GPT, false for an msdos label.
    pub gpt: bool,
    /// Disks in controller order.
    pub disks: Vec<Disk>,
    /// NICs.
    pub nics: Vec<NicModel>,
}

/// A NIC as the hardware profile describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NicModel {
    /// Pinned name.
    pub name: String,
    /// Model.
    pub model: String,
    /// Driver.
    pub driver: String,
    /// Role.
    pub role: NicRole,
    /// Carries vPro/AMT.
    pub vpro: bool,
}

/// A NIC of one host: its model plus its MAC address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Nic {
    /// Pinned name.
    pub name: String,
    /// MAC, lowercase `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// The MAC is a placeholder still to be replaced.
    pub placeholder: bool,
    /// Model.
    pub model: String,
    /// Driver.
    pub driver: String,
    /// Role.
    pub role: NicRole,
    /// Carries vPro/AMT.
    pub vpro: bool,
}

/// An address with its prefix length as written (`91.224.148.84/32`).
pub type Address = IpNet;

/// A host's public network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Network {
    /// NIC carrying the public addresses.
    pub interface: String,
    /// Bridge over it holding the addresses, if the host runs VMs.
    pub bridge: Option<String>,
    /// The device that holds the addresses: the bridge, or the NIC.
    pub device: String,
    /// rc.local's initial wait.
    pub settle_seconds: u32,
    /// Main IPv4 address.
    pub ipv4: Ipv4Net,
    /// IPv4 gateway.
    pub ipv4_gateway: Ipv4Addr,
    /// Gateway reached on-link.
    pub ipv4_onlink: bool,
    /// Main IPv6 address.
    pub ipv6: Option<Ipv6Net>,
    /// IPv6 link-local address.
    pub ipv6_link_local: Option<Ipv6Net>,
    /// IPv6 gateway.
    pub ipv6_gateway: Option<Ipv6Addr>,
    /// Nameservers.
    pub nameservers: Vec<IpAddr>,
    /// Extra routed addresses.
    pub routed: Vec<Routed>,
    /// NAT bridge for private VMs.
    pub nat_bridge: Option<NatBridge>,
    /// Port forwards.
    pub port_forwards: Vec<PortForward>,
}

/// An extra routed address set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Routed {
    /// IPv4.
    pub ipv4: Ipv4Net,
    /// IPv6.
    pub ipv6: Option<Ipv6Net>,
    /// IPv6 link-local.
    pub ipv6_link_local: Option<Ipv6Net>,
    /// Description.
    pub description: String,
    /// The VM that holds these addresses (set when a VM profile claims them); `None`: the
    /// host holds them itself. A routed address has exactly one owner.
    pub owner: Option<String>,
}

/// NAT bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NatBridge {
    /// Name.
    pub name: String,
    /// Gateway address with prefix.
    pub address: Ipv4Net,
    /// The private network (address with host bits cleared).
    pub network: Ipv4Net,
    /// Proxy ARP on.
    pub proxy_arp: bool,
}

/// Transport protocol of a port forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// A DNAT port forward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortForward {
    /// Protocol.
    pub protocol: Protocol,
    /// Public port.
    pub port: u16,
    /// Private address.
    pub to_address: Ipv4Addr,
    /// Private port.
    pub to_port: u16,
    /// Description.
    pub description: String,
}

/// The cluster address of a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterLink {
    /// Device carrying it.
    pub interface: String,
    /// Address with prefix.
    pub address: Ipv4Net,
}

/// Size of a partition or volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    /// Exactly this many bytes.
    Bytes(u64),
    /// Whatever remains.
    Rest,
}

/// When an array is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// By the Debian installer.
    Install,
    /// By the first-boot script on the installed system.
    FirstBoot,
}

/// What sits on an array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArrayContent {
    /// A filesystem mounted somewhere.
    Filesystem {
        /// Filesystem type.
        fs: String,
        /// Mount point.
        mount: String,
    },
    /// An LVM physical volume for this volume group.
    VolumeGroup(String),
}

/// An md RAID array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Array {
    /// Name (`md0`).
    pub name: String,
    /// Array number (0 for md0).
    pub number: u32,
    /// RAID level.
    pub level: u32,
    /// Member disk ids.
    pub disks: Vec<String>,
    /// Member partition size.
    pub size: Size,
    /// Creation stage.
    pub stage: Stage,
    /// Content.
    pub content: ArrayContent,
}

/// An LVM logical volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Volume {
    /// Volume group.
    pub group: String,
    /// Name.
    pub name: String,
    /// Size.
    pub size: Size,
    /// Filesystem (`swap` for swap).
    pub filesystem: String,
    /// Mount point.
    pub mount: Option<String>,
}

/// A host's storage layout as declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Storage {
    /// Disks that get a boot loader.
    pub boot_disks: Vec<String>,
    /// Arrays.
    pub arrays: Vec<Array>,
    /// Logical volumes.
    pub volumes: Vec<Volume>,
}

/// A validated host profile, with its hardware resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Host {
    /// Profile name (file stem).
    pub name: String,
    /// Host name.
    pub hostname: String,
    /// Domain.
    pub domain: String,
    /// Hardware profile name.
    pub hardware: String,
    /// Cluster name, if a member.
    pub cluster: Option<String>,
    /// Installer settings after layering.
    pub install: Install,
    /// Root password crypt hash.
    #[serde(skip)]
    pub root_password_hash: String,
    /// SSH public keys.
    pub ssh_keys: Vec<String>,
    /// NICs with their MACs.
    pub nics: Vec<Nic>,
    /// Disks, with this host's device overrides applied.
    pub disks: Vec<Disk>,
    /// Firmware mode.
    pub firmware: Firmware,
    /// GPT label.
    pub gpt: bool,
    /// vPro address.
    pub vpro_address: Option<Ipv4Addr>,
    /// AMT port (16992 HTTP, 16993 TLS).
    pub vpro_port: u16,
    /// Pinned SHA-256 fingerprint of AMT's TLS certificate (TLS is used when set).
    pub vpro_tls_sha256: Option<[u8; 32]>,
    /// Public network.
    pub network: Network,
    /// Cluster address.
    pub cluster_link: Option<ClusterLink>,
    /// Storage.
    pub storage: Storage,
}

impl Host {
    /// The fully qualified domain name.
    pub fn fqdn(&self) -> String {
        format!("{}.{}", self.hostname, self.domain)
    }

    /// The NIC with this role, if any.
    pub fn nic_with_role(&self, role: NicRole) -> Option<&Nic> {
        self.nics.iter().find(|n| n.role == role)
    }

    /// The disk with this id.
    pub fn disk(&self, id: &str) -> Option<&Disk> {
        self.disks.iter().find(|d| d.id == id)
    }
}

/// A cluster member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// Host profile name.
    pub host: String,
    /// Node id.
    pub nodeid: u32,
    /// Votes.
    pub votes: u32,
}

/// A validated cluster profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cluster {
    /// Profile name (file stem).
    pub profile: String,
    /// corosync cluster name.
    pub name: String,
    /// Crypto on.
    pub crypto: bool,
    /// Who owns corosync.conf on the nodes.
    pub manager: ClusterManager,
    /// The quorum choice.
    pub quorum: Quorum,
    /// Transport.
    pub transport: String,
    /// Members, by node id.
    pub nodes: Vec<Node>,
    /// Recorded config_version state, if any.
    pub lock: Option<ClusterLock>,
    /// Backups, if declared.
    pub backup: Option<Backup>,
}

/// A cluster's backups: a vzdump job writing into a directory storage on every node, and each
/// node pulling the other's dumps over the cluster link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Backup {
    /// Proxmox storage id.
    pub storage: String,
    /// Its directory (a mount point on every node).
    pub path: String,
    /// vzdump job time, `HH:MM`.
    pub schedule: String,
    /// `prune-backups keep-daily`.
    pub keep_daily: u32,
    /// vzdump mode.
    pub mode: String,
    /// Per node (host name), the time of day `HH:MM` it pulls the other node's dumps.
    pub pull_at: BTreeMap<String, String>,
}

/// Who owns a cluster's corosync.conf on its nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum ClusterManager {
    /// Proxmox VE: pmxcfs keeps `/etc/pve/corosync.conf` and copies it to `/etc/corosync`;
    /// the install writes nothing there, and `cluster form` puts the rendered settings in.
    Proxmox(ProxmoxRepo),
    /// corosync alone: the install puts the rendered corosync.conf in `/etc/corosync`.
    Standalone,
}

impl ClusterManager {
    /// The Proxmox repository when Proxmox manages the cluster.
    pub fn proxmox(&self) -> Option<&ProxmoxRepo> {
        match self {
            ClusterManager::Proxmox(r) => Some(r),
            ClusterManager::Standalone => None,
        }
    }
}

/// Where Proxmox VE is installed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProxmoxRepo {
    /// Repository URL.
    pub repository: String,
    /// Components (`pve-no-subscription`).
    pub components: Vec<String>,
    /// URL of the signing keyring.
    pub keyring_url: String,
    /// Its pinned SHA-256 (lower-case hex).
    pub keyring_sha256: String,
}

/// How a cluster keeps quorum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Quorum {
    /// votequorum `two_node: 1` (implies `wait_for_all`): either node alone stays quorate
    /// once both have been seen, and a split brain is resolved only by fencing.
    TwoNode,
    /// A corosync-qnetd host casts a third vote (`model: net`, `algorithm: ffsplit`).
    Qdevice {
        /// Address of the qnetd host.
        qnetd: String,
    },
}

/// The recorded corosync config_version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterLock {
    /// Last rendered version.
    pub config_version: u64,
    /// Hash of the content it was rendered for.
    pub content_sha256: String,
}

/// Every profile, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profiles {
    /// Organisation name.
    pub organisation: String,
    /// SSH jump host to the vPro management network (site `[vpro] jump-host`).
    pub vpro_jump_host: Option<String>,
    /// Hardware profiles by name.
    pub hardware: BTreeMap<String, Hardware>,
    /// Hosts by name.
    pub hosts: BTreeMap<String, Host>,
    /// Clusters by name.
    pub clusters: BTreeMap<String, Cluster>,
    /// VMs by name.
    pub vms: BTreeMap<String, Vm>,
    /// The services layer (`services.toml`), when declared.
    pub services: Option<super::services::Services>,
}

impl Profiles {
    /// The host names, for an error that names an unknown one (`a, b`).
    pub fn host_names(&self) -> String {
        self.hosts.keys().cloned().collect::<Vec<_>>().join(", ")
    }

    /// The cluster names, for an error that names an unknown one (`a, b`).
    pub fn cluster_names(&self) -> String {
        self.clusters.keys().cloned().collect::<Vec<_>>().join(", ")
    }

    /// The VM names, for an error that names an unknown one (`a, b`).
    pub fn vm_names(&self) -> String {
        self.vms.keys().cloned().collect::<Vec<_>>().join(", ")
    }

    /// The VMs that run on `node`.
    pub fn vms_on<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Vm> + 'a {
        self.vms.values().filter(move |v| v.node == node)
    }
}

/// A validated VM profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vm {
    /// Profile name (file stem).
    pub name: String,
    /// Short host name.
    pub hostname: String,
    /// DNS domain.
    pub domain: String,
    /// Host profile name of its node.
    pub node: String,
    /// Proxmox VM id.
    pub vmid: u32,
    /// Virtual CPU cores.
    pub cores: u32,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// Roles.
    pub roles: Vec<String>,
    /// Root password hash.
    #[serde(skip)]
    pub root_password_hash: String,
    /// Root's SSH keys.
    pub ssh_keys: Vec<String>,
    /// Nameservers.
    pub nameservers: Vec<IpAddr>,
    /// System disk.
    pub system_disk: VmDisk,
    /// Data disk.
    pub data_disk: Option<VmDataDisk>,
    /// NICs, in order (`net0`, …).
    pub nics: Vec<VmNic>,
}

impl Vm {
    /// Every disk's size in bytes, system first.
    pub fn disk_bytes(&self) -> u64 {
        self.system_disk.size_bytes + self.data_disk.as_ref().map_or(0, |d| d.disk.size_bytes)
    }

    /// The fully qualified name.
    pub fn fqdn(&self) -> String {
        format!("{}.{}", self.hostname, self.domain)
    }
}

/// A VM disk on a Proxmox storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmDisk {
    /// Size in bytes.
    pub size_bytes: u64,
    /// Proxmox storage id.
    pub storage: String,
}

/// The data disk: one volume group, one volume over all of it, one filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmDataDisk {
    /// The disk.
    pub disk: VmDisk,
    /// Volume group.
    pub volume_group: String,
    /// Logical volume.
    pub volume: String,
    /// Filesystem.
    pub filesystem: String,
    /// Mount point.
    pub mount: String,
}

/// A VM's NIC with its static addresses (a VM takes nothing from DHCP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmNic {
    /// Proxmox's name for it (`net0`).
    pub name: String,
    /// Node bridge.
    pub bridge: String,
    /// MAC (lower case).
    pub mac: String,
    /// IPv4 address.
    pub ipv4: Option<Ipv4Net>,
    /// IPv4 gateway.
    pub ipv4_gateway: Option<Ipv4Addr>,
    /// IPv6 address.
    pub ipv6: Option<Ipv6Net>,
    /// IPv6 link-local address.
    pub ipv6_link_local: Option<Ipv6Net>,
    /// IPv6 gateway.
    pub ipv6_gateway: Option<Ipv6Addr>,
}
