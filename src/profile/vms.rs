//! VM profiles against the rest: each VM on a node of a cluster, plugged into that node's
//! bridges, holding addresses the node can give it (a routed public address, owned once; a
//! private one inside the node's NAT bridge), every port forward aimed at a declared VM, and
//! vmids and MACs unique. Sizes against the node are checked once storage is planned
//! ([`crate::project`]).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use super::model::{Host, Routed, Vm, VmNic};
use super::source::{Diagnostics, SourceFile};
use super::validate::{verify_unique, verify_vm, Checker, Claim};
use super::{parse, raw, read, toml_files, ProfileError, Sourced};

/// VM profiles under `vms/` (none when the directory does not exist).
pub(super) fn load_vms(dir: &Path, diags: &mut Diagnostics) -> Result<Sourced<Vm>, ProfileError> {
    let mut vms = BTreeMap::new();
    let mut sources = BTreeMap::new();
    let vms_dir = dir.join("vms");
    if !vms_dir.exists() {
        return Ok((vms, sources));
    }
    for (name, path) in toml_files(&vms_dir)? {
        let src = read(&path)?;
        if let Some(raw) = parse::<raw::RawVm>(&src, diags) {
            let mut c = Checker { src: &src, diags };
            if let Some(vm) = verify_vm(&mut c, &name, &raw) {
                vms.insert(name.clone(), vm);
            }
        }
        sources.insert(name, src);
    }
    Ok((vms, sources))
}

/// The profiles a placement check reads.
pub(super) struct Placement<'a> {
    pub hosts: &'a mut BTreeMap<String, Host>,
    pub host_sources: &'a BTreeMap<String, SourceFile>,
    pub vms: &'a BTreeMap<String, Vm>,
    pub vm_sources: &'a BTreeMap<String, SourceFile>,
}

/// Every cross-check of the VMs; on success the routed addresses the VMs hold are marked
/// with their owner (so rc.local leaves them to the VM).
pub(super) fn verify_placement(p: Placement<'_>, diags: &mut Diagnostics) {
    // A node whose own profile has problems (reported there) is not checked against: its
    // VMs would only repeat them.
    let faulty: Vec<String> = p
        .host_sources
        .iter()
        .filter(|(_, src)| diags.0.iter().any(|d| d.file == src.path()))
        .map(|(name, _)| name.clone())
        .collect();
    for (name, vm) in p.vms {
        if faulty.contains(&vm.node) {
            continue;
        }
        let src = &p.vm_sources[name];
        let mut c = Checker { src, diags };
        let Some(host) = p.hosts.get_mut(&vm.node) else {
            if !p.host_sources.contains_key(&vm.node) {
                c.err(
                    "node",
                    format!("no host profile `{}` (hosts/{}.toml)", vm.node, vm.node),
                );
            }
            continue;
        };
        if host.cluster.is_none() {
            c.err(
                "node",
                format!(
                    "`{}` is in no cluster: VMs run on the Proxmox nodes",
                    vm.node
                ),
            );
        }
        for (i, nic) in vm.nics.iter().enumerate() {
            verify_nic(&mut c, i, nic, vm, host);
        }
    }
    verify_port_forwards(&p, &faulty, diags);
    verify_unique_vm_values(&p, diags);
}

/// The node's bridge a NIC is plugged into, and the addresses that bridge can carry.
fn verify_nic(c: &mut Checker<'_>, i: usize, nic: &VmNic, vm: &Vm, host: &mut Host) {
    let f = |k: &str| format!("nics[{i}].{k}");
    let net = &mut host.network;
    let public = net.bridge.as_deref() == Some(nic.bridge.as_str());
    let private = net
        .nat_bridge
        .as_ref()
        .filter(|b| b.name == nic.bridge)
        .cloned();
    if !public && private.is_none() {
        let known: Vec<&str> = net
            .bridge
            .iter()
            .map(String::as_str)
            .chain(net.nat_bridge.as_ref().map(|b| b.name.as_str()))
            .collect();
        c.err(
            f("bridge"),
            format!(
                "`{}` is not a bridge of `{}` (its bridges: {})",
                nic.bridge,
                host.name,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        );
        return;
    }
    if let Some(b) = private {
        if let Some(a) = nic.ipv4 {
            if !b.network.contains(&a.addr()) || a.prefix_len() != b.network.prefix_len() {
                c.err(
                    f("ipv4"),
                    format!(
                        "{a} is not an address of {}, the network of {} on `{}`",
                        b.network, b.name, host.name
                    ),
                );
            } else if a.addr() == b.address.addr() {
                c.err(
                    f("ipv4"),
                    format!(
                        "{a} is the gateway of {} on `{}`, not a VM's address",
                        b.name, host.name
                    ),
                );
            }
        }
        if let Some(g) = nic.ipv4_gateway {
            if g != b.address.addr() {
                c.err(
                    f("ipv4-gateway"),
                    format!(
                        "{g}: a VM on {} goes out through `{}`'s {}",
                        b.name,
                        host.name,
                        b.address.addr()
                    ),
                );
            }
        }
        if nic.ipv6.is_some() || nic.ipv6_gateway.is_some() {
            c.err(
                f("ipv6"),
                format!("{} on `{}` carries IPv4 only (NAT)", b.name, host.name),
            );
        }
        return;
    }
    let Some(a) = nic.ipv4 else { return };
    if a.addr() == net.ipv4.addr() {
        c.err(
            f("ipv4"),
            format!("{} is `{}`'s own address", a.addr(), host.name),
        );
        return;
    }
    let listed: Vec<String> = net
        .routed
        .iter()
        .map(|r| r.ipv4.addr().to_string())
        .collect();
    let Some(r) = net.routed.iter_mut().find(|r| r.ipv4.addr() == a.addr()) else {
        c.err(
            f("ipv4"),
            format!(
                "{} is not routed to `{}` (its routed addresses: {})",
                a.addr(),
                host.name,
                if listed.is_empty() {
                    "none".to_string()
                } else {
                    listed.join(", ")
                }
            ),
        );
        return;
    };
    verify_routed_match(c, i, nic, r, &host.name);
    if let Some(g) = nic.ipv4_gateway.filter(|g| *g != net.ipv4_gateway) {
        c.err(
            f("ipv4-gateway"),
            format!(
                "{g}: the provider's gateway on {} is {}",
                nic.bridge, net.ipv4_gateway
            ),
        );
    }
    if let (Some(g), Some(want)) = (nic.ipv6_gateway, net.ipv6_gateway) {
        if g != want {
            c.err(
                f("ipv6-gateway"),
                format!(
                    "{g}: the provider's IPv6 gateway on {} is {want}",
                    nic.bridge
                ),
            );
        }
    }
    if r.owner.is_none() {
        r.owner = Some(vm.name.clone());
    }
}

/// A routed entry is taken whole: the VM's IPv6 and link-local are the entry's.
fn verify_routed_match(c: &mut Checker<'_>, i: usize, nic: &VmNic, r: &Routed, node: &str) {
    let pairs = [
        (
            "ipv4",
            Some(nic.ipv4.map(|a| a.to_string())),
            Some(r.ipv4.to_string()),
        ),
        (
            "ipv6",
            Some(nic.ipv6.map(|a| a.to_string())),
            r.ipv6.map(|a| a.to_string()),
        ),
        (
            "ipv6-link-local",
            Some(nic.ipv6_link_local.map(|a| a.to_string())),
            r.ipv6_link_local.map(|a| a.to_string()),
        ),
    ];
    for (k, got, want) in pairs {
        let got = got.flatten();
        if got != want {
            c.err(
                format!("nics[{i}].{k}"),
                format!(
                    "{}: `{node}` routes {} with {k} {} (the VM takes the routed set whole)",
                    got.as_deref().unwrap_or("(none)"),
                    r.ipv4.addr(),
                    want.as_deref().unwrap_or("(none)")
                ),
            );
        }
    }
}

/// Every port forward of a node goes to a private address of a VM declared on that node.
fn verify_port_forwards(p: &Placement<'_>, faulty: &[String], diags: &mut Diagnostics) {
    for (name, host) in p.hosts.iter().filter(|(n, _)| !faulty.contains(n)) {
        let Some(b) = &host.network.nat_bridge else {
            continue;
        };
        let src = &p.host_sources[name];
        for (i, f) in host.network.port_forwards.iter().enumerate() {
            let target = p.vms.values().find(|v| {
                v.node == *name
                    && v.nics.iter().any(|n| {
                        n.bridge == b.name && n.ipv4.is_some_and(|a| a.addr() == f.to_address)
                    })
            });
            if target.is_none() {
                diags.push(src.diag(
                    format!("network.port-forwards[{i}].to"),
                    format!(
                        "{}:{} is no VM's address on {} (declare the VM in vms/ with node = \"{name}\")",
                        f.to_address, f.to_port, b.name
                    ),
                ));
            }
        }
    }
}

/// vmids unique in each cluster, MACs unique among VMs and hosts, addresses unique (public
/// ones everywhere, private ones on their node's bridge).
fn verify_unique_vm_values(p: &Placement<'_>, diags: &mut Diagnostics) {
    let mut vmids = Vec::new();
    let mut macs = Vec::new();
    let mut addrs = Vec::new();
    // Each host MAC once: two hosts sharing one are reported by the hosts' own check.
    let mut host_macs = std::collections::BTreeSet::new();
    for (name, h) in p.hosts.iter() {
        let src = &p.host_sources[name];
        for n in h.nics.iter().filter(|n| host_macs.insert(n.mac.clone())) {
            macs.push((
                n.mac.clone(),
                Claim {
                    src,
                    field: format!("nics.{}.mac", n.name),
                },
            ));
        }
    }
    for (name, vm) in p.vms {
        let src = &p.vm_sources[name];
        // A VM on a node that did not load is reported there; its values are not compared.
        let Some(node) = p.hosts.get(&vm.node) else {
            continue;
        };
        let cluster = node.cluster.clone().unwrap_or_default();
        vmids.push((
            format!("{} in cluster `{cluster}`", vm.vmid),
            Claim {
                src,
                field: "vmid".into(),
            },
        ));
        for (i, n) in vm.nics.iter().enumerate() {
            macs.push((
                n.mac.clone(),
                Claim {
                    src,
                    field: format!("nics[{i}].mac"),
                },
            ));
            let private = node
                .network
                .nat_bridge
                .as_ref()
                .is_some_and(|b| b.name == n.bridge);
            let mut add = |a: IpAddr, k: &str| {
                let key = if private {
                    format!("{a} on {}'s {}", vm.node, n.bridge)
                } else {
                    a.to_string()
                };
                addrs.push((
                    key,
                    Claim {
                        src,
                        field: format!("nics[{i}].{k}"),
                    },
                ));
            };
            if let Some(a) = n.ipv4 {
                add(IpAddr::V4(a.addr()), "ipv4");
            }
            if let Some(a) = n.ipv6 {
                add(IpAddr::V6(a.addr()), "ipv6");
            }
        }
    }
    verify_unique(diags, "vmid", vmids);
    verify_unique(diags, "MAC", macs);
    verify_unique(diags, "address", addrs);
}
