//! A host's `[network]`: its interface and bridge, IPv4 and IPv6 addresses with their
//! gateways, nameservers, the routed extra addresses, the NAT bridge and its port forwards.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use super::{is_link_local_v6, valid_interface, Checker, MAX_SETTLE_SECONDS};
use crate::profile::model::*;
use crate::profile::raw::*;

/// The interface exists on the hardware; the bridge's name is free.
fn interfaces(c: &mut Checker<'_>, raw: &RawNetwork, nics: &[Nic]) {
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
}

/// The host's IPv4 address and its gateway (on-link, or inside the prefix).
fn ipv4(c: &mut Checker<'_>, raw: &RawNetwork) -> (Option<Ipv4Net>, Option<Ipv4Addr>) {
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
    (ipv4, gw)
}

/// The host's IPv6 address, link-local address and gateway.
type Ipv6Setup = (Option<Ipv6Net>, Option<Ipv6Net>, Option<Ipv6Addr>);

/// The host's IPv6 address (not link-local), its link-local one (in fe80::/10), and a
/// gateway that is link-local or inside the prefix.
fn ipv6(c: &mut Checker<'_>, raw: &RawNetwork) -> Ipv6Setup {
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
    (ipv6, ll, gw6)
}

/// The extra addresses the provider routes to the host.
fn routed(c: &mut Checker<'_>, raw: &RawNetwork) -> Vec<Routed> {
    let mut routed = Vec::new();
    for (i, r) in raw.routed.iter().enumerate() {
        let f = |k: &str| format!("network.routed[{i}].{k}");
        if let Err(why) = crate::profile::text::comment_text(&r.description) {
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
                owner: None,
            });
        }
    }
    routed
}

/// The private bridge the VMs sit behind (its gateway address inside an RFC 1918 network).
fn nat_bridge(c: &mut Checker<'_>, raw: &RawNetwork, nics: &[Nic]) -> Option<NatBridge> {
    let b = raw.nat_bridge.as_ref()?;
    let address = c.ipv4_host("network.nat-bridge.address", &b.address)?;
    if address.prefix_len() >= 31 || address.addr() == address.network() {
        c.err(
            "network.nat-bridge.address",
            format!(
                "{address} must be a gateway address inside a private network (e.g. 10.0.42.1/24)"
            ),
        );
    }
    if !address.addr().is_private() {
        c.err(
            "network.nat-bridge.address",
            format!("{address} is not a private (RFC 1918) address"),
        );
    }
    let taken = nics.iter().any(|n| n.name == b.name) || raw.bridge.as_deref() == Some(&b.name);
    if taken || !valid_interface(&b.name) {
        c.err(
            "network.nat-bridge.name",
            format!("`{}` is not a free interface name", b.name),
        );
    }
    Some(NatBridge {
        name: b.name.clone(),
        address,
        network: address.trunc(),
        proxy_arp: b.proxy_arp,
    })
}

/// One port forward: protocol, port, and a VM address inside the NAT bridge's network.
fn port_forward(
    c: &mut Checker<'_>,
    i: usize,
    p: &RawPortForward,
    nat_bridge: Option<&NatBridge>,
) -> Option<PortForward> {
    let f = |k: &str| format!("network.port-forwards[{i}].{k}");
    if let Err(why) = crate::profile::text::comment_text(&p.description) {
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
    match (&to, nat_bridge) {
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
    let (protocol, port, to) = (protocol?, port?, to?);
    Some(PortForward {
        protocol,
        port,
        to_address: *to.ip(),
        to_port: to.port(),
        description: p.description.clone(),
    })
}

/// Every port forward, each (protocol, port) once.
fn port_forwards(
    c: &mut Checker<'_>,
    raw: &RawNetwork,
    nat_bridge: Option<&NatBridge>,
) -> Vec<PortForward> {
    let mut port_forwards = Vec::new();
    let mut seen_ports = BTreeSet::new();
    for (i, p) in raw.port_forwards.iter().enumerate() {
        let Some(pf) = port_forward(c, i, p, nat_bridge) else {
            continue;
        };
        if !seen_ports.insert((p.protocol.clone(), pf.port)) {
            c.err(
                format!("network.port-forwards[{i}].port"),
                format!("{} port {} is forwarded twice", p.protocol, pf.port),
            );
        }
        port_forwards.push(pf);
    }
    port_forwards
}

/// A host's `[network]`, every problem reported with its field.
pub(super) fn verify_network(
    c: &mut Checker<'_>,
    raw: &RawNetwork,
    nics: &[Nic],
) -> Option<Network> {
    interfaces(c, raw, nics);
    let (ipv4, gw) = ipv4(c, raw);
    let (ipv6, ll, gw6) = ipv6(c, raw);
    let nameservers = super::verify_nameservers(c, "network.nameservers", &raw.nameservers);
    let routed = routed(c, raw);
    let nat_bridge = nat_bridge(c, raw, nics);
    let port_forwards = port_forwards(c, raw, nat_bridge.as_ref());
    let settle_seconds = raw.settle_seconds.unwrap_or(3);
    if settle_seconds > MAX_SETTLE_SECONDS {
        c.err(
            "network.settle-seconds",
            format!("{settle_seconds} is more than {MAX_SETTLE_SECONDS} seconds (rc.local waits this long at every boot)"),
        );
        return None;
    }
    Some(Network {
        interface: raw.interface.clone(),
        bridge: raw.bridge.clone(),
        device: raw.bridge.clone().unwrap_or_else(|| raw.interface.clone()),
        settle_seconds,
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
