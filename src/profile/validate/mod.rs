//! Raw profiles -> validated model. Each `verify_*` function checks one concern and records
//! every problem it finds (it does not stop at the first), so `picaboot check` lists them all.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::model::*;
use super::raw::*;
use super::source::{Diagnostics, SourceFile};
use super::units::{check_password_hash, check_ssh_key, parse_bytes, parse_mac};

pub(crate) mod backup;
mod install;
mod network;
mod storage;
mod vm;
use network::verify_network;
use storage::verify_storage;
pub(crate) use vm::verify_vm;

/// The highest corosync node id (knet's limit).
pub const MAX_NODEID: u32 = 65535;

/// The longest `network.settle-seconds` (rc.local sleeps this long at every boot).
pub const MAX_SETTLE_SECONDS: u32 = 600;

/// Records problems against one source file.
pub(crate) struct Checker<'a> {
    pub src: &'a SourceFile,
    pub diags: &'a mut Diagnostics,
}

impl Checker<'_> {
    /// Records a problem with `field`.
    pub fn err(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        let d = self.src.diag(field, reason);
        self.diags.push(d);
    }

    /// Runs a parser and records its error against `field`.
    pub(super) fn parse<T>(&mut self, field: &str, r: Result<T, String>) -> Option<T> {
        r.map_err(|e| self.err(field, e)).ok()
    }

    pub(super) fn ipv4_net(&mut self, field: &str, text: &str) -> Option<Ipv4Net> {
        if let Some(why) = leading_zero(text) {
            self.err(field, why);
            return None;
        }
        match text.parse::<IpNet>() {
            Ok(IpNet::V4(n)) => Some(n),
            Ok(IpNet::V6(_)) => {
                self.err(
                    field,
                    format!("`{text}` is an IPv6 address; an IPv4 one is needed"),
                );
                None
            }
            Err(_) => {
                let (addr, len) = text.split_once('/').unwrap_or((text, ""));
                let reason = if text.parse::<IpAddr>().is_ok() {
                    format!("`{text}` has no prefix length (write e.g. `{text}/32`)")
                } else if addr.parse::<Ipv4Addr>().is_ok() {
                    format!("`{text}`: prefix length `{len}` is not 0 to 32")
                } else {
                    format!("`{text}` is not an IPv4 address with prefix (a.b.c.d/len)")
                };
                self.err(field, reason);
                None
            }
        }
    }

    /// An IPv4 address with prefix that a host holds on an interface: a prefix of at least
    /// /8, and (up to /30) neither the network nor the broadcast address of its prefix. /31
    /// (RFC 3021) and /32 have neither.
    pub(super) fn ipv4_host(&mut self, field: &str, text: &str) -> Option<Ipv4Net> {
        let n = self.ipv4_net(field, text)?;
        if n.prefix_len() < 8 {
            self.err(
                field,
                format!("`{text}`: a host address on an interface takes a prefix of /8 to /32"),
            );
        } else if n.prefix_len() <= 30 {
            let what = if n.addr() == n.network() {
                Some("network")
            } else if n.addr() == n.broadcast() {
                Some("broadcast")
            } else {
                None
            };
            if let Some(what) = what {
                self.err(
                    field,
                    format!(
                        "`{text}` is the {what} address of {}, not a host address",
                        n.trunc()
                    ),
                );
            }
        }
        Some(n)
    }

    /// An IPv6 address with prefix that a host holds on an interface (a prefix of /8 or more).
    pub(super) fn ipv6_host(&mut self, field: &str, text: &str) -> Option<Ipv6Net> {
        let n = self.ipv6_net(field, text)?;
        if n.prefix_len() < 8 {
            self.err(
                field,
                format!("`{text}`: a host address on an interface takes a prefix of /8 to /128"),
            );
        }
        Some(n)
    }

    pub(super) fn ipv6_net(&mut self, field: &str, text: &str) -> Option<Ipv6Net> {
        match text.parse::<IpNet>() {
            Ok(IpNet::V6(n)) => Some(n),
            Ok(IpNet::V4(_)) => {
                self.err(
                    field,
                    format!("`{text}` is an IPv4 address; an IPv6 one is needed"),
                );
                None
            }
            Err(_) => {
                self.err(
                    field,
                    format!("`{text}` is not an IPv6 address with prefix"),
                );
                None
            }
        }
    }
}

/// One rule for leading zeros in every IPv4 field (std's address parser, used for gateways,
/// nameservers and the vPro address, refuses them; ipnet's accepts them): an octet or prefix
/// length written with a leading zero (`091.224.148.84/32`, `10.0.0.1/08`) is refused, since
/// other tools read such octets as octal.
fn leading_zero(text: &str) -> Option<String> {
    let (addr, len) = text.split_once('/').unwrap_or((text, ""));
    if !addr.contains('.') || addr.contains(':') {
        return None;
    }
    let zero = |p: &str| p.len() > 1 && p.starts_with('0') && p.chars().all(|c| c.is_ascii_digit());
    if addr.split('.').any(zero) || zero(len) {
        Some(format!(
            "`{text}` has a number with a leading zero (other tools read it as octal): write it without"
        ))
    } else {
        None
    }
}

pub(super) fn is_link_local_v6(a: &Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

/// Checks a name used as a file name, host name, interface or LVM name.
pub(super) fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && !s.starts_with('-')
}

pub(crate) use install::verify_install;

/// Splits a mirror URL into the installer's protocol, host name and directory.
pub fn parse_mirror(url: &str) -> Result<Mirror, String> {
    let (protocol, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("`{url}` is not a URL (http://host/debian)"))?;
    if protocol != "http" && protocol != "https" {
        return Err(format!(
            "`{url}`: the installer takes http:// or https:// mirrors"
        ));
    }
    let (hostname, dir) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if hostname.is_empty() || hostname.contains(char::is_whitespace) {
        return Err(format!("`{url}` has no host name"));
    }
    if !super::text::url_chars(url) {
        return Err(format!(
            "`{url}`: a mirror URL holds only letters, digits and `._~:/@%+=,-`"
        ));
    }
    Ok(Mirror {
        protocol: protocol.to_string(),
        hostname: hostname.to_string(),
        directory: dir.trim_end_matches('/').to_string().max("/".into()),
    })
}

/// The hardware's disks: ids unique, role, size, device (named once), model glob.
fn hardware_disks(c: &mut Checker<'_>, raw: &RawHardware) -> Vec<Disk> {
    let mut disks = Vec::new();
    let mut seen = BTreeSet::new();
    let mut devices = BTreeSet::new();
    for (i, d) in raw.disks.iter().enumerate() {
        let f = |k: &str| format!("disks[{i}].{k}");
        if !valid_name(&d.id, 32) {
            c.err(
                f("id"),
                format!("`{}` is not a disk id (lowercase letters, digits)", d.id),
            );
        } else if !seen.insert(d.id.clone()) {
            c.err(f("id"), format!("disk id `{}` is used twice", d.id));
        }
        let role = match d.role.as_str() {
            "ssd" => Some(DiskRole::Ssd),
            "hdd" => Some(DiskRole::Hdd),
            other => {
                c.err(f("role"), format!("`{other}` is not `ssd` or `hdd`"));
                None
            }
        };
        let size = match &d.size {
            toml::Value::Integer(n) if *n > 0 => Some(*n as u64),
            toml::Value::String(s) => c.parse(&f("size"), parse_bytes(s)),
            _ => {
                c.err(
                    f("size"),
                    "give a byte count or a size with unit such as `480GB`",
                );
                None
            }
        };
        let device = match &d.device {
            Some(dev) => {
                check_device(c, &f("device"), dev);
                dev.clone()
            }
            None => format!("/dev/sd{}", (b'a' + (i as u8).min(25)) as char),
        };
        if !devices.insert(device.clone()) {
            c.err(
                f("device"),
                format!("device {device} is named for two disks"),
            );
        }
        if let Some(m) = &d.model_match {
            check_match_text(c, &f("model-match"), m);
        }
        if let (Some(role), Some(size_bytes)) = (role, size) {
            disks.push(Disk {
                id: d.id.clone(),
                role,
                model: d.model.clone(),
                size_bytes,
                device,
                model_match: d.model_match.clone(),
                serial: None,
            });
        }
    }
    disks
}

/// The hardware's NICs: names unique, role.
fn hardware_nics(c: &mut Checker<'_>, raw: &RawHardware) -> Vec<NicModel> {
    let mut nics = Vec::new();
    let mut names = BTreeSet::new();
    for (i, n) in raw.nics.iter().enumerate() {
        let f = |k: &str| format!("nics[{i}].{k}");
        if !valid_interface(&n.name) {
            c.err(f("name"), format!("`{}` is not an interface name", n.name));
        } else if !names.insert(n.name.clone()) {
            c.err(f("name"), format!("NIC name `{}` is used twice", n.name));
        }
        let role = match n.role.as_str() {
            "install" => Some(NicRole::Install),
            "public" => Some(NicRole::Public),
            other => {
                c.err(f("role"), format!("`{other}` is not `install` or `public`"));
                None
            }
        };
        if let Some(role) = role {
            nics.push(NicModel {
                name: n.name.clone(),
                model: n.model.clone(),
                driver: n.driver.clone(),
                role,
                vpro: n.vpro,
            });
        }
    }
    nics
}

/// Checks a hardware profile.
pub(crate) fn verify_hardware(
    c: &mut Checker<'_>,
    name: &str,
    raw: &RawHardware,
) -> Option<Hardware> {
    let firmware = match raw.firmware.as_str() {
        "bios" => Some(Firmware::Bios),
        "uefi" => Some(Firmware::Uefi),
        other => {
            c.err("firmware", format!("`{other}` is not `bios` or `uefi`"));
            None
        }
    };
    let gpt = match raw.partition_table.as_str() {
        "gpt" => Some(true),
        "msdos" => Some(false),
        other => {
            c.err(
                "partition-table",
                format!("`{other}` is not `gpt` or `msdos`"),
            );
            None
        }
    };
    let disks = hardware_disks(c, raw);
    let nics = hardware_nics(c, raw);
    if !nics.iter().any(|n| n.role == NicRole::Install) && !raw.nics.is_empty() {
        c.err(
            "nics",
            "no NIC has role `install`: the installer needs one for DHCP",
        );
    }
    Some(Hardware {
        name: name.to_string(),
        board: raw.board.clone(),
        cpu: raw.cpu.clone(),
        cpu_cores: raw.cpu_cores,
        memory_gib: raw.memory_gib,
        firmware: firmware?,
        gpt: gpt?,
        disks,
        nics,
    })
}

fn valid_interface(s: &str) -> bool {
    super::text::interface_name(s)
}

/// A model glob or serial lands in a shell script (quoted): printable ASCII without quotes,
/// backslashes or `$`.
fn check_match_text(c: &mut Checker<'_>, field: &str, text: &str) {
    let ok = !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|ch| ch.is_ascii_graphic() && !"'\"\\$`".contains(ch) || ch == ' ');
    if !ok {
        c.err(
            field,
            format!("`{text}`: use printable ASCII without quotes, backslashes, `$` or backticks (at most 64)"),
        );
    }
}

fn check_device(c: &mut Checker<'_>, field: &str, dev: &str) {
    if let Err(why) = super::text::device_path(dev) {
        c.err(field, why);
    }
}

/// Checks a host profile against its hardware and the site defaults.
pub(crate) fn verify_host(
    c: &mut Checker<'_>,
    name: &str,
    raw: &RawHost,
    hardware: &BTreeMap<String, (Hardware, RawInstall, SourceFile)>,
    site: Option<(&RawInstall, &SourceFile)>,
) -> Option<Host> {
    verify_identity(
        c,
        name,
        Identity {
            hostname: &raw.hostname,
            domain: &raw.domain,
            root_password_hash: &raw.root_password_hash,
            ssh_keys: &raw.ssh_keys,
        },
    );
    let Some((hw, hw_install, hw_src)) = hardware.get(&raw.hardware) else {
        let known: Vec<&str> = hardware.keys().map(String::as_str).collect();
        c.err(
            "hardware",
            format!(
                "no hardware profile `{}` (hardware/{}.toml); known: {}",
                raw.hardware,
                raw.hardware,
                known.join(", ")
            ),
        );
        return None;
    };
    let mut layers = Vec::new();
    if let Some(site) = site {
        layers.push(site);
    }
    layers.push((hw_install, hw_src));
    let own_src = c.src;
    layers.push((&raw.install, own_src));
    let install = verify_install(c, &layers, site.is_some());
    let nics = verify_host_nics(c, raw, hw);
    let disks = verify_disk_devices(c, raw, hw);
    let vpro_address = raw
        .vpro
        .as_ref()
        .and_then(|v| match v.address.parse::<Ipv4Addr>() {
            Ok(a) => Some(a),
            Err(_) => {
                c.err(
                    "vpro.address",
                    format!("`{}` is not an IPv4 address", v.address),
                );
                None
            }
        });
    let (vpro_port, vpro_tls_sha256) = verify_vpro_access(c, raw.vpro.as_ref());
    let network = verify_network(c, &raw.network, &nics);
    let cluster_link = raw.cluster_link.as_ref().and_then(|l| {
        let address = c.ipv4_host("cluster-link.address", &l.address)?;
        let known: Vec<&str> = nics
            .iter()
            .map(|n| n.name.as_str())
            .chain(raw.network.bridge.as_deref())
            .chain(raw.network.nat_bridge.as_ref().map(|b| b.name.as_str()))
            .collect();
        if !known.contains(&l.interface.as_str()) {
            c.err(
                "cluster-link.interface",
                format!(
                    "`{}` is none of this host's interfaces ({})",
                    l.interface,
                    known.join(", ")
                ),
            );
        }
        Some(ClusterLink {
            interface: l.interface.clone(),
            address,
        })
    });
    let storage = verify_storage(c, &raw.storage, &disks);
    Some(Host {
        name: name.to_string(),
        hostname: raw.hostname.clone(),
        domain: raw.domain.clone(),
        hardware: raw.hardware.clone(),
        cluster: raw.cluster.clone(),
        install: install?,
        root_password_hash: raw.root_password_hash.clone(),
        ssh_keys: raw.ssh_keys.clone(),
        nics,
        disks,
        firmware: hw.firmware,
        gpt: hw.gpt,
        vpro_address,
        vpro_port,
        vpro_tls_sha256,
        network: network?,
        cluster_link,
        storage: storage?,
    })
}

/// What a host and a VM profile both declare about the machine itself.
pub(super) struct Identity<'a> {
    pub hostname: &'a str,
    pub domain: &'a str,
    pub root_password_hash: &'a str,
    pub ssh_keys: &'a [String],
}

/// The host name (the file's name too), the domain, the root password hash (never
/// plaintext) and each SSH key.
pub(super) fn verify_identity(c: &mut Checker<'_>, name: &str, id: Identity<'_>) {
    if name != id.hostname {
        c.err(
            "hostname",
            format!("`{}` differs from the file name `{name}.toml`", id.hostname),
        );
    }
    if !valid_name(id.hostname, 63) || id.hostname.contains('_') {
        c.err("hostname", format!("`{}` is not a host name", id.hostname));
    }
    if !super::text::dns_domain(id.domain) {
        c.err("domain", format!("`{}` is not a DNS domain", id.domain));
    }
    if let Err(e) = check_password_hash(id.root_password_hash) {
        c.err("root-password-hash", e);
    }
    for (i, k) in id.ssh_keys.iter().enumerate() {
        if let Err(e) = check_ssh_key(k) {
            c.err(format!("ssh-keys[{i}]"), e);
        }
    }
}

/// Nameserver addresses, each checked (`field[i]`).
pub(super) fn verify_nameservers(c: &mut Checker<'_>, field: &str, list: &[String]) -> Vec<IpAddr> {
    let mut nameservers = Vec::new();
    for (i, n) in list.iter().enumerate() {
        match n.parse::<IpAddr>() {
            Ok(a) => nameservers.push(a),
            Err(_) => c.err(
                format!("{field}[{i}]"),
                format!("`{n}` is not an IP address"),
            ),
        }
    }
    nameservers
}

/// `[vpro] port` and `tls-sha256`: the port defaults to 16992, or 16993 with TLS.
fn verify_vpro_access(c: &mut Checker<'_>, v: Option<&RawVpro>) -> (u16, Option<[u8; 32]>) {
    let Some(v) = v else {
        return (16992, None);
    };
    let pin = v.tls_sha256.as_ref().and_then(|s| {
        let digits: String = s.chars().filter(|c| *c != ':').collect();
        match hex::decode(&digits)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
        {
            Some(b) => Some(b),
            None => {
                c.err(
                    "vpro.tls-sha256",
                    format!("`{s}` is not a SHA-256 fingerprint (64 hex digits, colons allowed)"),
                );
                None
            }
        }
    });
    let port = match v.port {
        Some(0) => {
            c.err("vpro.port", "0 is not a port");
            16992
        }
        Some(p) => p,
        None if v.tls_sha256.is_some() => 16993,
        None => 16992,
    };
    (port, pin)
}

/// `site.toml [vpro] jump-host`: one ssh destination, not an option.
pub(crate) fn verify_jump_host(c: &mut Checker<'_>, jump: &str) -> bool {
    let ok = !jump.is_empty() && !jump.starts_with('-') && !jump.contains(char::is_whitespace);
    if !ok {
        c.err(
            "vpro.jump-host",
            format!("`{jump}` is not an ssh destination ([user@]host[:port] or a config alias)"),
        );
    }
    ok
}

fn verify_host_nics(c: &mut Checker<'_>, raw: &RawHost, hw: &Hardware) -> Vec<Nic> {
    let mut nics = Vec::new();
    let mut macs = BTreeSet::new();
    for model in &hw.nics {
        let Some(n) = raw.nics.get(&model.name) else {
            c.err(
                "nics",
                format!("no MAC for NIC `{}` of hardware `{}`", model.name, hw.name),
            );
            continue;
        };
        let field = format!("nics.{}.mac", model.name);
        if let Some(mac) = c.parse(&field, parse_mac(&n.mac)) {
            if !macs.insert(mac.clone()) {
                c.err(&field, format!("MAC {mac} is given to two NICs"));
            }
            nics.push(Nic {
                name: model.name.clone(),
                mac,
                placeholder: n.placeholder,
                model: model.model.clone(),
                driver: model.driver.clone(),
                role: model.role,
                vpro: model.vpro,
            });
        }
    }
    for name in raw.nics.keys() {
        if !hw.nics.iter().any(|m| &m.name == name) {
            c.err(
                format!("nics.{name}"),
                format!("hardware `{}` has no NIC named `{name}`", hw.name),
            );
        }
    }
    nics
}

fn verify_disk_devices(c: &mut Checker<'_>, raw: &RawHost, hw: &Hardware) -> Vec<Disk> {
    for (id, dev) in &raw.disk_devices {
        if !hw.disks.iter().any(|d| &d.id == id) {
            c.err(
                format!("disk-devices.{id}"),
                format!("hardware `{}` has no disk `{id}`", hw.name),
            );
        }
        check_device(c, &format!("disk-devices.{id}"), dev);
    }
    for (id, serial) in &raw.disk_serials {
        if !hw.disks.iter().any(|d| &d.id == id) {
            c.err(
                format!("disk-serials.{id}"),
                format!("hardware `{}` has no disk `{id}`", hw.name),
            );
        }
        check_match_text(c, &format!("disk-serials.{id}"), serial);
    }
    let disks: Vec<Disk> = hw
        .disks
        .iter()
        .map(|d| Disk {
            device: raw
                .disk_devices
                .get(&d.id)
                .cloned()
                .unwrap_or_else(|| d.device.clone()),
            serial: raw.disk_serials.get(&d.id).cloned(),
            ..d.clone()
        })
        .collect();
    // Two hardware disks on one device are reported in the hardware profile; here only a
    // clash that this host's `disk-devices` makes.
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for d in &disks {
        let Some(other) = seen.insert(&d.device, &d.id) else {
            continue;
        };
        if raw.disk_devices.contains_key(&d.id) || raw.disk_devices.contains_key(other) {
            c.err(
                format!("disk-devices.{}", d.id),
                format!("device {} is named for two disks", d.device),
            );
        }
    }
    disks
}

/// Checks a cluster profile (members are checked against hosts in [`verify_cross`]).
pub(crate) fn verify_cluster(
    c: &mut Checker<'_>,
    profile: &str,
    raw: &RawCluster,
    lock: Option<ClusterLock>,
) -> Option<Cluster> {
    if !valid_name(&raw.name, 32) {
        c.err("name", format!("`{}` is not a cluster name", raw.name));
    }
    let transport = raw.transport.clone().unwrap_or_else(|| "knet".into());
    if !["knet", "udp", "udpu"].contains(&transport.as_str()) {
        c.err(
            "transport",
            format!("`{transport}` is not knet, udp or udpu"),
        );
    }
    let quorum = verify_quorum(c, raw);
    let manager = verify_manager(c, raw);
    let mut nodes = Vec::new();
    let mut ids = BTreeSet::new();
    let mut hosts = BTreeSet::new();
    for (i, n) in raw.nodes.iter().enumerate() {
        // corosync's knet transport takes node ids below 65536 ("Knet requires nodeid to be
        // less than 65536").
        let id = u32::try_from(n.nodeid)
            .ok()
            .filter(|&x| (1..=MAX_NODEID).contains(&x));
        match id {
            None => c.err(
                format!("nodes[{i}].nodeid"),
                format!(
                    "{} is not a node id from 1 to {MAX_NODEID} (corosync's knet limit)",
                    n.nodeid
                ),
            ),
            Some(id) if !ids.insert(id) => c.err(
                format!("nodes[{i}].nodeid"),
                format!("node id {id} is used twice"),
            ),
            _ => {}
        }
        if !hosts.insert(n.host.clone()) {
            c.err(
                format!("nodes[{i}].host"),
                format!("`{}` is listed twice", n.host),
            );
        }
        let votes = u32::try_from(n.votes).ok().filter(|&v| v > 0);
        if votes.is_none() {
            c.err(
                format!("nodes[{i}].votes"),
                format!("{} is not a positive vote count", n.votes),
            );
        }
        if let (Some(nodeid), Some(votes)) = (id, votes) {
            nodes.push(Node {
                host: n.host.clone(),
                nodeid,
                votes,
            });
        }
    }
    nodes.sort_by_key(|n| n.nodeid);
    let backup = raw
        .backup
        .as_ref()
        .and_then(|b| backup::verify_backup(c, b, &raw.nodes, &raw.manager));
    Some(Cluster {
        profile: profile.to_string(),
        name: raw.name.clone(),
        crypto: raw.crypto,
        manager: manager?,
        quorum: quorum?,
        transport,
        nodes,
        lock,
        backup,
    })
}

/// `quorum` and `qnetd` of a cluster profile.
fn verify_quorum(c: &mut Checker<'_>, raw: &RawCluster) -> Option<Quorum> {
    match (raw.quorum.as_str(), &raw.qnetd) {
        ("two-node", None) => {
            if raw.nodes.len() != 2 {
                c.err(
                    "quorum",
                    format!(
                        "two-node quorum needs exactly two nodes; {} are listed",
                        raw.nodes.len()
                    ),
                );
            }
            Some(Quorum::TwoNode)
        }
        ("two-node", Some(_)) => {
            c.err(
                "qnetd",
                "a qnetd host is only used with quorum = \"qdevice\"",
            );
            None
        }
        ("qdevice", None) => {
            c.err(
                "quorum",
                "quorum = \"qdevice\" needs `qnetd`, the address of the corosync-qnetd host",
            );
            None
        }
        ("qdevice", Some(q)) => {
            if q.parse::<std::net::IpAddr>().is_ok() || super::text::dns_domain(q) {
                Some(Quorum::Qdevice { qnetd: q.clone() })
            } else {
                c.err(
                    "qnetd",
                    format!("`{q}` is not an IP address or a host name"),
                );
                None
            }
        }
        (other, _) => {
            c.err(
                "quorum",
                format!("`{other}` is not `two-node` or `qdevice`"),
            );
            None
        }
    }
}

/// `manager` and `[proxmox]` of a cluster profile.
fn verify_manager(c: &mut Checker<'_>, raw: &RawCluster) -> Option<ClusterManager> {
    match (raw.manager.as_str(), &raw.proxmox) {
        ("standalone", None) => Some(ClusterManager::Standalone),
        ("standalone", Some(_)) => {
            c.err(
                "proxmox",
                "[proxmox] is only read with manager = \"proxmox\"",
            );
            None
        }
        ("proxmox", None) => {
            c.err(
                "manager",
                "manager = \"proxmox\" needs a [proxmox] table (repository, keyring-url, \
                 keyring-sha256)",
            );
            None
        }
        ("proxmox", Some(p)) => verify_proxmox(c, p).map(ClusterManager::Proxmox),
        (other, _) => {
            c.err(
                "manager",
                format!("`{other}` is not `proxmox` or `standalone`"),
            );
            None
        }
    }
}

fn verify_proxmox(c: &mut Checker<'_>, p: &RawProxmox) -> Option<ProxmoxRepo> {
    let mut ok = true;
    for (field, url) in [
        ("proxmox.repository", &p.repository),
        ("proxmox.keyring-url", &p.keyring_url),
    ] {
        let host = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .map(|rest| rest.split('/').next().unwrap_or(""));
        let reason = match host {
            None => Some("apt fetches it over http:// or https://"),
            Some("") => Some("it has no host name"),
            Some(_) if !super::text::url_chars(url) => {
                Some("a URL here holds only letters, digits and `._~:/@%+=,-`")
            }
            Some(_) => None,
        };
        if let Some(r) = reason {
            c.err(field, format!("`{url}`: {r}"));
            ok = false;
        }
    }
    let components = p
        .components
        .clone()
        .unwrap_or_else(|| vec!["pve-no-subscription".to_string()]);
    for (i, comp) in components.iter().enumerate() {
        let good = !comp.is_empty()
            && comp
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "-_/".contains(ch));
        if !good {
            c.err(
                format!("proxmox.components[{i}]"),
                format!("`{comp}` is not an apt component"),
            );
            ok = false;
        }
    }
    if components.is_empty() {
        c.err("proxmox.components", "no component listed");
        ok = false;
    }
    let sha = &p.keyring_sha256;
    if sha.len() != 64
        || !sha
            .chars()
            .all(|ch| ch.is_ascii_digit() || ('a'..='f').contains(&ch))
    {
        c.err(
            "proxmox.keyring-sha256",
            format!("`{sha}` is not a SHA-256 (64 lower-case hex digits)"),
        );
        ok = false;
    }
    ok.then(|| ProxmoxRepo {
        repository: p.repository.trim_end_matches('/').to_string(),
        components,
        keyring_url: p.keyring_url.clone(),
        keyring_sha256: sha.clone(),
    })
}

/// Where a host-level value was declared, to report duplicates across files.
pub(crate) struct Claim<'a> {
    pub src: &'a SourceFile,
    pub field: String,
}

/// Records every value claimed by two places (addresses, MACs, host names).
pub(crate) fn verify_unique<'a>(
    diags: &mut Diagnostics,
    what: &str,
    claims: Vec<(String, Claim<'a>)>,
) {
    let mut first: BTreeMap<String, &Claim<'a>> = BTreeMap::new();
    for (value, claim) in &claims {
        match first.get(value) {
            Some(prev) => {
                let reason = format!(
                    "{what} {value} is also used by {}:{} ({})",
                    prev.src.path().display(),
                    prev.src.line_of(&prev.field),
                    prev.field
                );
                diags.push(claim.src.diag(claim.field.clone(), reason));
            }
            None => {
                first.insert(value.clone(), claim);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::leading_zero;
    use super::storage::{beneath, lvm_reserved};

    #[test]
    fn lvm_reserved_names_follow_lvm8() {
        for vg in [
            "mapper", "disk", "md0", "sda", "sdab", "loop1", "dm-0", "nvme0", ".", "..",
        ] {
            assert!(lvm_reserved(vg, true).is_some(), "vg {vg}");
        }
        for vg in ["pve", "backup", "vdata", "store", "mdx", "data0"] {
            assert!(lvm_reserved(vg, true).is_none(), "vg {vg}");
        }
        for lv in [
            "snapshot",
            "snapshot1",
            "pvmove",
            "pvmove0",
            "x_tmeta",
            "a_rimage_0",
            "b_pmspare",
            ".",
        ] {
            assert!(lvm_reserved(lv, false).is_some(), "lv {lv}");
        }
        for lv in ["root", "swap", "data", "save", "my_snap", "tmeta"] {
            assert!(lvm_reserved(lv, false).is_none(), "lv {lv}");
        }
    }

    #[test]
    fn one_leading_zero_rule() {
        for bad in [
            "091.224.148.84/32",
            "10.0.0.01",
            "10.0.0.1/08",
            "00.1.2.3/8",
        ] {
            assert!(leading_zero(bad).is_some(), "{bad}");
        }
        for ok in [
            "91.224.148.84/32",
            "10.0.0.0/8",
            "0.0.0.0/0",
            "fe80::01/64",
            "10.0.0.1",
        ] {
            assert!(leading_zero(ok).is_none(), "{ok}");
        }
    }

    #[test]
    fn nesting() {
        assert!(beneath("/srv/data", "/srv"));
        assert!(beneath("/SAVE", "/"));
        assert!(!beneath("/srv", "/srv"));
        assert!(!beneath("/srvx", "/srv"));
    }
}
