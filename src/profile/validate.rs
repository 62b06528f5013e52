//! Raw profiles -> validated model. Each `verify_*` function checks one concern and records
//! every problem it finds (it does not stop at the first), so `picaboot check` lists them all.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::model::*;
use super::raw::*;
use super::source::{Diagnostics, SourceFile};
use super::units::{check_password_hash, check_ssh_key, parse_bytes, parse_mac};

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
    fn parse<T>(&mut self, field: &str, r: Result<T, String>) -> Option<T> {
        r.map_err(|e| self.err(field, e)).ok()
    }

    fn ipv4_net(&mut self, field: &str, text: &str) -> Option<Ipv4Net> {
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
    fn ipv4_host(&mut self, field: &str, text: &str) -> Option<Ipv4Net> {
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
    fn ipv6_host(&mut self, field: &str, text: &str) -> Option<Ipv6Net> {
        let n = self.ipv6_net(field, text)?;
        if n.prefix_len() < 8 {
            self.err(
                field,
                format!("`{text}`: a host address on an interface takes a prefix of /8 to /128"),
            );
        }
        Some(n)
    }

    fn ipv6_net(&mut self, field: &str, text: &str) -> Option<Ipv6Net> {
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

fn is_link_local_v6(a: &Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

/// Checks a name used as a file name, host name, interface or LVM name.
fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && !s.starts_with('-')
}

/// Layers install settings (later wins) and checks each value; a problem is reported in the
/// file of the layer that set the value. `complete` is false when a layer failed to parse, in
/// which case unset values are not reported (the parse error is).
pub(crate) fn verify_install(
    c: &mut Checker<'_>,
    layers: &[(&RawInstall, &SourceFile)],
    complete: bool,
) -> Option<Install> {
    let mut m = RawInstall::default();
    let mut origin: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (i, (l, _)) in layers.iter().enumerate() {
        macro_rules! take {
            ($f:ident, $key:literal) => {
                if l.$f.is_some() {
                    m.$f = l.$f.clone();
                    origin.insert($key, i);
                }
            };
        }
        take!(suite, "suite");
        take!(mirror, "mirror");
        take!(proxy, "proxy");
        take!(locale, "locale");
        take!(keyboard, "keyboard");
        take!(timezone, "timezone");
        take!(frontend, "frontend");
        take!(kernel_params, "kernel-params");
        take!(packages, "packages");
    }
    let host_src = c.src;
    let src_of = |key: &str| origin.get(key).map_or(host_src, |&i| layers[i].1);
    let err = |c: &mut Checker<'_>, key: &'static str, field: String, reason: String| {
        let d = src_of(key).diag(field, reason);
        c.diags.push(d);
    };
    let missing = |c: &mut Checker<'_>, name: &str, v: &Option<String>| -> Option<String> {
        if v.is_none() && complete {
            c.err(
                format!("install.{name}"),
                "not set in site.toml, the hardware profile or the host profile",
            );
        }
        v.clone()
    };
    let suite = missing(c, "suite", &m.suite);
    let mirror = missing(c, "mirror", &m.mirror);
    let locale = missing(c, "locale", &m.locale);
    let keyboard = missing(c, "keyboard", &m.keyboard);
    let timezone = missing(c, "timezone", &m.timezone);
    let frontend = missing(c, "frontend", &m.frontend);

    let suite = suite.filter(|s| {
        let ok = valid_name(s, 32) && s.chars().all(|c| c.is_ascii_lowercase());
        if !ok {
            err(
                c,
                "suite",
                "install.suite".to_string(),
                format!("`{s}` is not a Debian suite codename"),
            );
        }
        ok
    })?;
    let mirror = mirror.and_then(|u| {
        parse_mirror(&u)
            .map_err(|e| err(c, "mirror", "install.mirror".into(), e))
            .ok()
    })?;
    let proxy = m.proxy.filter(|p| !p.is_empty());
    if let Some(p) = &proxy {
        if !(p.starts_with("http://") || p.starts_with("https://")) || !super::text::url_chars(p) {
            err(
                c,
                "proxy",
                "install.proxy".to_string(),
                format!("`{p}` is not an http:// or https:// URL"),
            );
        }
    }
    let locale = locale.filter(|l| {
        let ok = super::text::locale(l);
        if !ok {
            err(
                c,
                "locale",
                "install.locale".to_string(),
                format!("`{l}` is not a locale such as en_US.UTF-8"),
            );
        }
        ok
    })?;
    let timezone = timezone.filter(|t| {
        let ok = super::text::timezone(t);
        if !ok {
            err(
                c,
                "timezone",
                "install.timezone".to_string(),
                format!("`{t}` is not a time zone such as Europe/Paris"),
            );
        }
        ok
    })?;
    let keyboard = keyboard.filter(|k| {
        let ok = super::text::keymap(k);
        if !ok {
            err(
                c,
                "keyboard",
                "install.keyboard".to_string(),
                format!("`{k}` is not an xkb keymap such as fr or us"),
            );
        }
        ok
    });
    let frontend = match frontend?.as_str() {
        "gtk" | "graphical" => Frontend::Gtk,
        "text" => Frontend::Text,
        other => {
            err(
                c,
                "frontend",
                "install.frontend".to_string(),
                format!("`{other}` is not `gtk` or `text`"),
            );
            return None;
        }
    };
    let kernel_params = m.kernel_params.unwrap_or_default();
    for (i, p) in kernel_params.iter().enumerate() {
        if let Err(e) = super::text::kernel_param(p) {
            err(c, "kernel-params", format!("install.kernel-params[{i}]"), e);
        }
    }
    let packages = m.packages.unwrap_or_default();
    for (i, p) in packages.iter().enumerate() {
        if !super::text::debian_package(p) {
            err(
                c,
                "packages",
                format!("install.packages[{i}]"),
                format!("`{p}` is not a Debian package name (Debian Policy 5.6.1: lower-case letters, digits and `+.-`, at least two, starting with a letter or digit)"),
            );
        }
    }
    Some(Install {
        suite,
        mirror,
        proxy,
        locale,
        keyboard: keyboard?,
        timezone,
        frontend,
        kernel_params,
        packages,
    })
}

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
    if name != raw.hostname {
        c.err(
            "hostname",
            format!(
                "`{}` differs from the file name `{name}.toml`",
                raw.hostname
            ),
        );
    }
    if !valid_name(&raw.hostname, 63) || raw.hostname.contains('_') {
        c.err("hostname", format!("`{}` is not a host name", raw.hostname));
    }
    if !super::text::dns_domain(&raw.domain) {
        c.err("domain", format!("`{}` is not a DNS domain", raw.domain));
    }
    if let Err(e) = check_password_hash(&raw.root_password_hash) {
        c.err("root-password-hash", e);
    }
    for (i, k) in raw.ssh_keys.iter().enumerate() {
        if let Err(e) = check_ssh_key(k) {
            c.err(format!("ssh-keys[{i}]"), e);
        }
    }
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

fn verify_network(c: &mut Checker<'_>, raw: &RawNetwork, nics: &[Nic]) -> Option<Network> {
    if !nics.iter().any(|n| n.name == raw.interface) {
        c.err(
            "network.interface",
            format!("`{}` is not a NIC of this host's hardware", raw.interface),
        );
    }
    if let Some(b) = &raw.bridge {
        if !valid_interface(b) || nics.iter().any(|n| &n.name == b) {
            c.err(
                "network.bridge",
                format!("`{b}` is not a free interface name for a bridge"),
            );
        }
    }
    let ipv4 = c.ipv4_host("network.ipv4", &raw.ipv4);
    let gw = match raw.ipv4_gateway.parse::<Ipv4Addr>() {
        Ok(g) => Some(g),
        Err(_) => {
            c.err(
                "network.ipv4-gateway",
                format!("`{}` is not an IPv4 address", raw.ipv4_gateway),
            );
            None
        }
    };
    if let (Some(a), Some(g)) = (ipv4, gw) {
        if a.addr() == g {
            c.err(
                "network.ipv4-gateway",
                format!("{g} is this host's own address"),
            );
        } else if !raw.ipv4_onlink && !a.contains(&g) {
            c.err(
                "network.ipv4-gateway",
                format!(
                    "{g} is not reachable from {a} (outside its prefix); set `ipv4-onlink = true` \
                     if the provider routes it on-link"
                ),
            );
        }
    }
    let ipv6 = raw
        .ipv6
        .as_ref()
        .and_then(|t| c.ipv6_host("network.ipv6", t));
    if let Some(n) = ipv6 {
        if is_link_local_v6(&n.addr()) {
            c.err(
                "network.ipv6",
                format!("{n} is link-local; put it in `ipv6-link-local`"),
            );
        }
    }
    let ll = raw
        .ipv6_link_local
        .as_ref()
        .and_then(|t| c.ipv6_host("network.ipv6-link-local", t));
    if let Some(n) = ll {
        if !is_link_local_v6(&n.addr()) {
            c.err(
                "network.ipv6-link-local",
                format!("{n} is not in fe80::/10"),
            );
        }
    }
    let gw6 = raw
        .ipv6_gateway
        .as_ref()
        .and_then(|t| match t.parse::<Ipv6Addr>() {
            Ok(g) => Some(g),
            Err(_) => {
                c.err(
                    "network.ipv6-gateway",
                    format!("`{t}` is not an IPv6 address"),
                );
                None
            }
        });
    if let Some(g) = gw6 {
        let on_link = is_link_local_v6(&g) || ipv6.is_some_and(|n| n.contains(&g));
        if !on_link {
            c.err(
                "network.ipv6-gateway",
                format!("{g} is neither link-local nor inside the host's IPv6 prefix"),
            );
        }
        if ipv6.is_none() {
            c.err(
                "network.ipv6-gateway",
                "an IPv6 gateway needs an `ipv6` address",
            );
        }
    }
    let mut nameservers = Vec::new();
    for (i, n) in raw.nameservers.iter().enumerate() {
        match n.parse::<IpAddr>() {
            Ok(a) => nameservers.push(a),
            Err(_) => c.err(
                format!("network.nameservers[{i}]"),
                format!("`{n}` is not an IP address"),
            ),
        }
    }
    let mut routed = Vec::new();
    for (i, r) in raw.routed.iter().enumerate() {
        let f = |k: &str| format!("network.routed[{i}].{k}");
        if let Err(why) = super::text::comment_text(&r.description) {
            c.err(f("description"), why);
        }
        let v4 = c.ipv4_net(&f("ipv4"), &r.ipv4);
        let v6 = r.ipv6.as_ref().and_then(|t| c.ipv6_net(&f("ipv6"), t));
        let ll = r
            .ipv6_link_local
            .as_ref()
            .and_then(|t| c.ipv6_net(&f("ipv6-link-local"), t));
        if let Some(n) = ll {
            if !is_link_local_v6(&n.addr()) {
                c.err(f("ipv6-link-local"), format!("{n} is not in fe80::/10"));
            }
        }
        if let Some(ipv4) = v4 {
            routed.push(Routed {
                ipv4,
                ipv6: v6,
                ipv6_link_local: ll,
                description: r.description.clone(),
            });
        }
    }
    let nat_bridge = raw.nat_bridge.as_ref().and_then(|b| {
        let address = c.ipv4_host("network.nat-bridge.address", &b.address)?;
        if address.prefix_len() >= 31 || address.addr() == address.network() {
            c.err(
                "network.nat-bridge.address",
                format!("{address} must be a gateway address inside a private network (e.g. 10.0.42.1/24)"),
            );
        }
        if !address.addr().is_private() {
            c.err("network.nat-bridge.address", format!("{address} is not a private (RFC 1918) address"));
        }
        let taken = nics.iter().any(|n| n.name == b.name) || raw.bridge.as_deref() == Some(&b.name);
        if taken || !valid_interface(&b.name) {
            c.err("network.nat-bridge.name", format!("`{}` is not a free interface name", b.name));
        }
        Some(NatBridge {
            name: b.name.clone(),
            address,
            network: address.trunc(),
            proxy_arp: b.proxy_arp,
        })
    });
    let mut port_forwards = Vec::new();
    let mut seen_ports = BTreeSet::new();
    for (i, p) in raw.port_forwards.iter().enumerate() {
        let f = |k: &str| format!("network.port-forwards[{i}].{k}");
        if let Err(why) = super::text::comment_text(&p.description) {
            c.err(f("description"), why);
        }
        let protocol = match p.protocol.as_str() {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            other => {
                c.err(f("protocol"), format!("`{other}` is not `tcp` or `udp`"));
                None
            }
        };
        let port = u16::try_from(p.port).ok().filter(|&x| x > 0);
        if port.is_none() {
            c.err(f("port"), format!("{} is not a port (1-65535)", p.port));
        }
        let to = p.to.parse::<std::net::SocketAddrV4>().ok();
        match (&to, &nat_bridge) {
            (None, _) => c.err(f("to"), format!("`{}` is not ADDRESS:PORT (IPv4)", p.to)),
            (Some(_), None) => c.err(
                f("to"),
                "port forwards go to VMs behind `network.nat-bridge`, which is not set",
            ),
            (Some(t), Some(b)) => {
                if !b.network.contains(t.ip()) || *t.ip() == b.address.addr() || t.port() == 0 {
                    c.err(
                        f("to"),
                        format!("{t} is not a VM address and port inside {}", b.network),
                    );
                }
            }
        }
        if let (Some(protocol), Some(port), Some(to)) = (protocol, port, to) {
            if !seen_ports.insert((p.protocol.clone(), port)) {
                c.err(
                    f("port"),
                    format!("{} port {port} is forwarded twice", p.protocol),
                );
            }
            port_forwards.push(PortForward {
                protocol,
                port,
                to_address: *to.ip(),
                to_port: to.port(),
                description: p.description.clone(),
            });
        }
    }
    Some(Network {
        interface: raw.interface.clone(),
        bridge: raw.bridge.clone(),
        device: raw.bridge.clone().unwrap_or_else(|| raw.interface.clone()),
        settle_seconds: match raw.settle_seconds.unwrap_or(3) {
            s if s > MAX_SETTLE_SECONDS => {
                c.err(
                    "network.settle-seconds",
                    format!("{s} is more than {MAX_SETTLE_SECONDS} seconds (rc.local waits this long at every boot)"),
                );
                return None;
            }
            s => s,
        },
        ipv4: ipv4?,
        ipv4_gateway: gw?,
        ipv4_onlink: raw.ipv4_onlink,
        ipv6,
        ipv6_link_local: ll,
        ipv6_gateway: gw6,
        nameservers,
        routed,
        nat_bridge,
        port_forwards,
    })
}

fn parse_size(c: &mut Checker<'_>, field: &str, text: &str) -> Option<Size> {
    if text == "rest" {
        Some(Size::Rest)
    } else {
        c.parse(field, parse_bytes(text)).map(Size::Bytes)
    }
}

/// Directories the system itself lives in or the kernel provides: a volume mounted there
/// hides the running system (`/boot`, `/var`, `/home`, `/srv`, `/opt`, `/tmp` stay allowed).
const SYSTEM_DIRS: &[&str] = &[
    "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sys",
    "/dev", "/run",
];

fn check_mount(c: &mut Checker<'_>, field: &str, m: &str, mounts: &mut BTreeSet<String>) {
    let system = SYSTEM_DIRS
        .iter()
        .find(|d| m == **d || m.strip_prefix(**d).is_some_and(|r| r.starts_with('/')));
    if !super::text::mount_point(m) {
        c.err(field, format!("`{m}` is not an absolute mount point"));
    } else if let Some(d) = system {
        c.err(
            field,
            format!("`{m}` is a system directory ({d}): a volume mounted there hides the running system"),
        );
    } else if !mounts.insert(m.to_string()) {
        c.err(field, format!("`{m}` is mounted twice"));
    }
}

/// True when mount point `inner` lies beneath `outer`.
fn beneath(inner: &str, outer: &str) -> bool {
    inner != outer
        && (outer == "/"
            || inner
                .strip_prefix(outer)
                .is_some_and(|r| r.starts_with('/')))
}

/// lvm(8) VALID NAMES: a VG may not be `.`, `..` or anything in /dev/ (the kernel's and
/// udev's names there); an LV may not be `.`, `..`, start with `snapshot` or `pvmove`, or
/// contain one of lvm's internal suffixes.
fn lvm_reserved(name: &str, vg: bool) -> Option<String> {
    const DEV: &[&str] = &[
        "mapper",
        "disk",
        "block",
        "char",
        "md",
        "mqueue",
        "shm",
        "pts",
        "hugepages",
        "input",
        "net",
        "snd",
        "dri",
        "bus",
        "cpu",
        "fd",
        "vfio",
        "null",
        "zero",
        "full",
        "random",
        "urandom",
        "tty",
        "console",
        "kmsg",
        "log",
        "stdin",
        "stdout",
        "stderr",
        "core",
        "mem",
        "kvm",
        "fuse",
        "loop-control",
        "ptmx",
        "rtc",
        "watchdog",
        "hpet",
        "port",
        "ppp",
        "uinput",
        "vhost-net",
        "btrfs-control",
        "cuse",
        "autofs",
        "usb",
        "raw",
        "dm",
        "lvm",
    ];
    const KERNEL_PREFIXES: &[&str] = &[
        "tty", "md", "loop", "ram", "nbd", "sr", "dm-", "nvme", "sd", "vd", "hd", "xvd", "sg",
        "vcs", "zram", "mmcblk", "rtc", "watchdog", "hidraw", "i2c-", "dri", "nst", "st",
    ];
    const SUFFIXES: &[&str] = &[
        "_cdata", "_cmeta", "_corig", "_iorig", "_mimage", "_mlog", "_pmspare", "_rimage",
        "_rmeta", "_tdata", "_tmeta", "_vdata", "_vorigin", "_wcorig",
    ];
    if name == "." || name == ".." {
        return Some(format!("`{name}` is reserved by lvm(8)"));
    }
    if vg {
        // A kernel device name: the prefix, then up to two letters (sdab) and/or a number.
        let kernel_name = KERNEL_PREFIXES.iter().any(|p| {
            name.strip_prefix(p).is_some_and(|r| {
                let letters = r.trim_end_matches(|c: char| c.is_ascii_digit());
                !r.is_empty()
                    && letters.len() <= 2
                    && letters.chars().all(|c| c.is_ascii_lowercase())
                    && (letters.len() < r.len() || matches!(*p, "sd" | "vd" | "hd" | "xvd"))
            })
        });
        if DEV.contains(&name) || kernel_name {
            return Some(format!(
                "`{name}` is a name in /dev/, which lvm(8) refuses for a volume group"
            ));
        }
        return None;
    }
    if let Some(p) = ["snapshot", "pvmove"]
        .iter()
        .find(|p| name.starts_with(**p))
    {
        return Some(format!(
            "`{name}` starts with `{p}`, which lvm(8) reserves for logical volumes"
        ));
    }
    SUFFIXES
        .iter()
        .find(|s| name.contains(**s))
        .map(|s| format!("`{name}` contains `{s}`, which lvm(8) reserves for its internal volumes"))
}

fn verify_storage(c: &mut Checker<'_>, raw: &RawStorage, disks: &[Disk]) -> Option<Storage> {
    let has_disk = |id: &str| disks.iter().any(|d| d.id == id);
    for (i, d) in raw.boot_disks.iter().enumerate() {
        if !has_disk(d) {
            c.err(
                format!("storage.boot-disks[{i}]"),
                format!("the hardware has no disk `{d}`"),
            );
        }
    }
    let mut arrays = Vec::new();
    let mut names = BTreeSet::new();
    let mut mounts = BTreeSet::new();
    // (mount point, when it is mounted, field)
    let mut placed: Vec<(String, Stage, String)> = Vec::new();
    let mut groups: BTreeMap<String, Stage> = BTreeMap::new();
    for (i, a) in raw.arrays.iter().enumerate() {
        let f = |k: &str| format!("storage.arrays[{i}].{k}");
        // Canonical `mdN` only (`md01` and `md+1` would be other names for the number N, or
        // no device at all), N at most 255 (partitionable md minors), unique by N.
        let number = a
            .name
            .strip_prefix("md")
            .and_then(|n| n.parse::<u32>().ok().filter(|x| x.to_string() == n))
            .filter(|&x| x <= 255);
        if number.is_none() {
            c.err(
                f("name"),
                format!(
                    "`{}` is not an md device name (md0 to md255, no leading zero)",
                    a.name
                ),
            );
        } else if !names.insert(number) {
            c.err(f("name"), format!("array `{}` is declared twice", a.name));
        }
        if a.level != 1 {
            c.err(
                f("level"),
                format!("RAID level {} is not supported (only 1, mirror)", a.level),
            );
        }
        if a.disks.len() < 2 {
            c.err(f("disks"), "a RAID1 array needs at least two member disks");
        }
        let mut members = BTreeSet::new();
        for (j, d) in a.disks.iter().enumerate() {
            if !has_disk(d) {
                c.err(
                    format!("storage.arrays[{i}].disks[{j}]"),
                    format!("the hardware has no disk `{d}`"),
                );
            } else if !members.insert(d) {
                c.err(
                    format!("storage.arrays[{i}].disks[{j}]"),
                    format!("disk `{d}` is a member twice"),
                );
            }
        }
        let size = parse_size(c, &f("size"), &a.size);
        let stage = match a.stage.as_str() {
            "install" => Some(Stage::Install),
            "first-boot" => Some(Stage::FirstBoot),
            other => {
                c.err(
                    f("stage"),
                    format!("`{other}` is not `install` or `first-boot`"),
                );
                None
            }
        };
        let content = match (&a.filesystem, &a.mount, &a.volume_group) {
            (Some(fs), Some(m), None) => {
                if !["ext2", "ext3", "ext4", "xfs"].contains(&fs.as_str()) {
                    c.err(
                        f("filesystem"),
                        format!("`{fs}` is not ext2, ext3, ext4 or xfs"),
                    );
                }
                check_mount(c, &f("mount"), m, &mut mounts);
                placed.push((m.clone(), stage.unwrap_or(Stage::Install), f("mount")));
                Some(ArrayContent::Filesystem {
                    fs: fs.clone(),
                    mount: m.clone(),
                })
            }
            (None, None, Some(vg)) => {
                if !valid_name(vg, 64) {
                    c.err(
                        f("volume-group"),
                        format!("`{vg}` is not a volume group name"),
                    );
                } else if let Some(why) = lvm_reserved(vg, true) {
                    c.err(f("volume-group"), why);
                }
                if groups
                    .insert(vg.clone(), stage.unwrap_or(Stage::Install))
                    .is_some()
                {
                    c.err(
                        f("volume-group"),
                        format!("volume group `{vg}` sits on two arrays"),
                    );
                }
                Some(ArrayContent::VolumeGroup(vg.clone()))
            }
            _ => {
                c.err(
                    f("volume-group"),
                    "give either `filesystem` and `mount`, or `volume-group`, for the array",
                );
                None
            }
        };
        if let (Some(number), Some(size), Some(stage), Some(content)) =
            (number, size, stage, content)
        {
            arrays.push(Array {
                name: a.name.clone(),
                number,
                level: 1,
                disks: a.disks.clone(),
                size,
                stage,
                content,
            });
        }
    }
    let mut volumes = Vec::new();
    let mut lv_names = BTreeSet::new();
    let mut rest_groups = BTreeSet::new();
    for (i, v) in raw.volumes.iter().enumerate() {
        let f = |k: &str| format!("storage.volumes[{i}].{k}");
        if !groups.contains_key(&v.group) {
            c.err(
                f("group"),
                format!("no array carries volume group `{}`", v.group),
            );
        }
        if !valid_name(&v.name, 64) {
            c.err(
                f("name"),
                format!("`{}` is not a logical volume name", v.name),
            );
        } else if let Some(why) = lvm_reserved(&v.name, false) {
            c.err(f("name"), why);
        } else if !lv_names.insert((v.group.clone(), v.name.clone())) {
            c.err(
                f("name"),
                format!("`{}/{}` is declared twice", v.group, v.name),
            );
        }
        let size = parse_size(c, &f("size"), &v.size);
        if size == Some(Size::Rest) && !rest_groups.insert(v.group.clone()) {
            c.err(
                f("size"),
                format!("two volumes of `{}` take the rest", v.group),
            );
        }
        match (v.filesystem.as_str(), &v.mount) {
            ("swap", None) => {}
            ("swap", Some(_)) => c.err(f("mount"), "swap is not mounted"),
            ("ext2" | "ext3" | "ext4" | "xfs", Some(m)) => {
                check_mount(c, &f("mount"), m, &mut mounts);
                let stage = groups.get(&v.group).copied().unwrap_or(Stage::Install);
                placed.push((m.clone(), stage, f("mount")));
            }
            ("ext2" | "ext3" | "ext4" | "xfs", None) => {
                c.err(f("mount"), "a filesystem needs a mount point")
            }
            (other, _) => c.err(
                f("filesystem"),
                format!("`{other}` is not ext2, ext3, ext4, xfs or swap"),
            ),
        }
        if let Some(size) = size {
            volumes.push(Volume {
                group: v.group.clone(),
                name: v.name.clone(),
                size,
                filesystem: v.filesystem.clone(),
                mount: v.mount.clone(),
            });
        }
    }
    // A first-boot mount over a directory holding an install-time mount hides it.
    for (outer, outer_stage, field) in &placed {
        if *outer_stage != Stage::FirstBoot {
            continue;
        }
        if let Some((inner, ..)) = placed
            .iter()
            .find(|(inner, st, _)| *st == Stage::Install && beneath(inner, outer))
        {
            c.err(
                field.clone(),
                format!("`{outer}` is mounted at first boot over `{inner}`, which the installer mounts: it would hide it"),
            );
        }
    }
    let root_on_install = arrays.iter().any(|a| {
        a.stage == Stage::Install
            && matches!(&a.content, ArrayContent::Filesystem { mount, .. } if mount == "/")
    }) || volumes
        .iter()
        .any(|v| v.mount.as_deref() == Some("/") && groups.get(&v.group) == Some(&Stage::Install));
    if !root_on_install {
        c.err("storage", "nothing is mounted on `/` by the installer");
    }
    Some(Storage {
        boot_disks: raw.boot_disks.clone(),
        arrays,
        volumes,
    })
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
    Some(Cluster {
        profile: profile.to_string(),
        name: raw.name.clone(),
        crypto: raw.crypto,
        manager: manager?,
        quorum: quorum?,
        transport,
        nodes,
        lock,
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
    use super::{beneath, leading_zero, lvm_reserved};

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
