//! rc.local executed for real in a fresh network namespace with dummy NICs named and addressed
//! as the host profile says (and a private /etc/resolv.conf in its own mount namespace); the
//! resulting addresses, routes, firewall rules and sysctls are compared with the profile.
//! Run twice: the second run changes nothing and reports no failure.

use crate::common;

use std::collections::BTreeSet;
use std::net::Ipv6Addr;
use std::path::Path;

use common::{require, run_ok, Netns};
use picaboot::profile::Host;

/// Runs rc.local inside the namespace with `resolv` bind-mounted over /etc/resolv.conf;
/// returns its stderr.
fn run_rc_local(ns: &Netns, rc_local: &Path, resolv: &Path) -> String {
    let out = ns
        .exec()
        .args(["unshare", "--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount --bind \"$1\" /etc/resolv.conf && exec sh \"$2\"")
        .args(["sh", resolv.to_str().unwrap(), rc_local.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "rc.local exited {}", out.status);
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn eui64_link_local(mac: &str) -> Ipv6Addr {
    let b: Vec<u8> = mac
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).unwrap())
        .collect();
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        b[0] ^ 2,
        b[1],
        b[2],
        0xff,
        0xfe,
        b[3],
        b[4],
        b[5],
    ])
}

/// `(ifname, address/prefix)` of every static address, without the kernel's EUI-64 link-locals.
fn addresses(ns: &Netns) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for link in ns.json(&["-j", "addr"]).as_array().unwrap() {
        let ifname = link["ifname"].as_str().unwrap().to_string();
        let mac = link["address"].as_str().unwrap_or("");
        for a in link["addr_info"].as_array().unwrap() {
            let local = a["local"].as_str().unwrap();
            if ifname == "lo"
                || ifname.starts_with("peer-")
                || (mac.len() == 17
                    && local.parse::<Ipv6Addr>().ok() == Some(eui64_link_local(mac)))
            {
                continue;
            }
            out.insert((ifname.clone(), format!("{local}/{}", a["prefixlen"])));
        }
    }
    out
}

fn expected_addresses(h: &Host) -> BTreeSet<(String, String)> {
    let n = &h.network;
    let dev = n.device.clone();
    let mut out = BTreeSet::new();
    let mut add = |d: &str, a: String| {
        out.insert((d.to_string(), a));
    };
    add(&dev, n.ipv4.to_string());
    for a in [n.ipv6, n.ipv6_link_local].into_iter().flatten() {
        add(&dev, a.to_string());
    }
    // Routed sets a VM holds stay off the host (one owner per routed address).
    for r in n.routed.iter().filter(|r| r.owner.is_none()) {
        add(&dev, r.ipv4.to_string());
        for a in [r.ipv6, r.ipv6_link_local].into_iter().flatten() {
            add(&dev, a.to_string());
        }
    }
    if let Some(l) = &h.cluster_link {
        add(&l.interface, l.address.to_string());
    }
    if let Some(b) = &n.nat_bridge {
        add(&b.name, b.address.to_string());
    }
    out
}

/// The state compared between two runs: every address, link (master, MAC, up), route and NAT
/// rule, without volatile details (DAD tentative flags, counters).
fn state(ns: &Netns) -> Vec<String> {
    let mut out = Vec::new();
    for link in ns.json(&["-j", "addr"]).as_array().unwrap() {
        let up = link["flags"].as_array().unwrap().iter().any(|f| f == "UP");
        out.push(format!(
            "link {} master={} mac={} up={up}",
            link["ifname"], link["master"], link["address"]
        ));
        for a in link["addr_info"].as_array().unwrap() {
            out.push(format!(
                "addr {} {}/{}",
                link["ifname"], a["local"], a["prefixlen"]
            ));
        }
    }
    for family in ["-4", "-6"] {
        for r in ns.json(&[family, "-j", "route"]).as_array().unwrap() {
            out.push(format!(
                "route {} via {} dev {} {}",
                r["dst"], r["gateway"], r["dev"], r["flags"]
            ));
        }
    }
    let nat = run_ok(ns.exec().args(["iptables-save", "-t", "nat"]));
    out.extend(
        nat.lines()
            .filter(|l| l.starts_with("-A"))
            .map(str::to_string),
    );
    out.sort();
    out
}

fn sysctl(ns: &Netns, path: &str) -> String {
    run_ok(ns.exec().args(["cat", path])).trim().to_string()
}

fn prepare(host: &Host, tag: &str) -> Netns {
    let ns = Netns::new(tag);
    // veth pairs stand for the NICs (this kernel has no dummy module); the peer end is up so
    // that the NIC has carrier, as a cabled port does.
    for nic in &host.nics {
        let peer = format!("peer-{}", nic.name);
        ns.ip(&[
            "link", "add", &nic.name, "address", &nic.mac, "type", "veth", "peer", "name", &peer,
        ]);
        ns.ip(&["link", "set", &peer, "up"]);
    }
    ns
}

fn check_host(name: &str) {
    for (program, package) in [
        ("ip", "iproute2"),
        ("iptables-save", "iptables"),
        ("unshare", "util-linux"),
    ] {
        require(program, package);
    }
    let scratch = common::scratch_profiles();
    let profiles = scratch.path().join("profiles");
    let (keep, out) = common::render_all(&profiles);
    let project = picaboot::project::open(&profiles).unwrap();
    let host = &project.loaded.profiles.hosts[name];
    let net = &host.network;
    let rc_local = out.join(name).join("rootfs/etc/rc.local");
    let resolv = keep.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 192.0.2.1\n").unwrap();

    let ns = prepare(host, name);
    let stderr = run_rc_local(&ns, &rc_local, &resolv);
    assert_eq!(stderr, "", "{name}: rc.local reported failures");

    assert_eq!(
        addresses(&ns),
        expected_addresses(host),
        "{name}: addresses"
    );

    // Links: the public NIC is a port of the bridge, which carries its MAC; the install NIC is down.
    let links = ns.json(&["-j", "link"]);
    let link = |n: &str| {
        links
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["ifname"] == n)
            .cloned()
            .unwrap()
    };
    let public = host.nics.iter().find(|n| n.name == net.interface).unwrap();
    if let Some(bridge) = &net.bridge {
        assert_eq!(
            link(&net.interface)["master"],
            bridge.as_str(),
            "{name}: NIC enslaved"
        );
        assert_eq!(
            link(bridge)["address"],
            public.mac.as_str(),
            "{name}: bridge MAC"
        );
    }
    let install = host
        .nics
        .iter()
        .find(|n| n.role == picaboot::profile::NicRole::Install)
        .unwrap();
    assert!(
        !link(&install.name)["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "UP"),
        "{name}: install NIC down"
    );

    // Default routes as the profile says.
    let routes = ns.json(&["-j", "route"]);
    let default = routes
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["dst"] == "default")
        .unwrap();
    assert_eq!(default["gateway"], net.ipv4_gateway.to_string().as_str());
    assert_eq!(default["dev"], net.device.as_str());
    assert_eq!(
        default["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "onlink"),
        net.ipv4_onlink
    );
    let routes6 = ns.json(&["-6", "-j", "route"]);
    let default6 = routes6
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["dst"] == "default")
        .unwrap();
    assert_eq!(
        default6["gateway"],
        net.ipv6_gateway.unwrap().to_string().as_str()
    );
    assert_eq!(default6["dev"], net.device.as_str());

    // NAT: one MASQUERADE rule for the private network and one DNAT per forward.
    let nat = run_ok(ns.exec().args(["iptables-save", "-t", "nat"]));
    let b = net.nat_bridge.as_ref().unwrap();
    let masq = format!(
        "-A POSTROUTING -s {} -o {} -j MASQUERADE",
        b.network, net.device
    );
    assert_eq!(nat.matches(&masq).count(), 1, "{name}: {nat}");
    for f in &net.port_forwards {
        let proto = format!("{:?}", f.protocol).to_lowercase();
        let rule = format!(
            "-A PREROUTING -i {} -p {proto} -m {proto} --dport {} -j DNAT --to-destination {}:{}",
            net.device, f.port, f.to_address, f.to_port
        );
        assert_eq!(
            nat.matches(&rule).count(),
            1,
            "{name}: missing `{rule}` in\n{nat}"
        );
    }
    assert_eq!(nat.matches("-j DNAT").count(), net.port_forwards.len());

    // Kernel settings.
    let confs = run_ok(ns.exec().args([
        "sh",
        "-c",
        "cat /proc/sys/net/ipv6/conf/*/autoconf /proc/sys/net/ipv6/conf/*/accept_ra",
    ]));
    assert!(
        confs.lines().all(|l| l == "0"),
        "{name}: autoconf/accept_ra off everywhere"
    );
    assert_eq!(
        sysctl(
            &ns,
            &format!("/proc/sys/net/ipv4/conf/{}/proxy_arp", b.name)
        ),
        "1"
    );
    assert_eq!(sysctl(&ns, "/proc/sys/net/ipv4/ip_forward"), "1");

    // The private resolv.conf got the nameservers; the host's is untouched.
    let want: String = net
        .nameservers
        .iter()
        .map(|n| format!("nameserver {n}\n"))
        .collect();
    assert_eq!(std::fs::read_to_string(&resolv).unwrap(), want);

    // Idempotent: a second run reports nothing and changes nothing.
    let before = state(&ns);
    let stderr = run_rc_local(&ns, &rc_local, &resolv);
    assert_eq!(stderr, "", "{name}: second run reported failures");
    assert_eq!(state(&ns), before, "{name}: second run changed the state");

    // The addresses of a routed set a VM now holds, left on the host by an earlier rc.local
    // (the wiki's put every routed address on the host), are taken off by the next run.
    let owned: Vec<String> = net
        .routed
        .iter()
        .filter(|r| r.owner.is_some())
        .flat_map(|r| {
            [
                Some(r.ipv4.to_string()),
                r.ipv6.map(|a| a.to_string()),
                r.ipv6_link_local.map(|a| a.to_string()),
            ]
        })
        .flatten()
        .collect();
    assert!(
        !owned.is_empty(),
        "{name}: the shipped VMs hold none of its routed sets"
    );
    for a in &owned {
        ns.ip(&["addr", "add", a, "dev", &net.device]);
    }
    let stderr = run_rc_local(&ns, &rc_local, &resolv);
    assert_eq!(
        stderr, "",
        "{name}: the run after stale addresses reported failures"
    );
    assert_eq!(
        state(&ns),
        before,
        "{name}: VM-owned addresses left on the host"
    );
}

#[test]
fn rc_local_of_alice_configures_the_profile_network() {
    check_host("alice");
}

#[test]
fn rc_local_of_bob_configures_the_profile_network() {
    check_host("bob");
}

#[test]
fn one_failing_command_does_not_stop_the_rest() {
    require("ip", "iproute2");
    let scratch = common::scratch_profiles();
    let profiles = scratch.path().join("profiles");
    let (keep, out) = common::render_all(&profiles);
    let project = picaboot::project::open(&profiles).unwrap();
    let host = &project.loaded.profiles.hosts["alice"];
    let ns = prepare(host, "fail");
    // The install NIC is missing: its command fails, everything after it still runs.
    ns.ip(&["link", "del", "eth0"]);
    let resolv = keep.path().join("resolv.conf");
    std::fs::write(&resolv, "").unwrap();
    let stderr = run_rc_local(&ns, &out.join("alice/rootfs/etc/rc.local"), &resolv);
    assert!(
        stderr.contains("rc.local: failed: ip link set dev eth0 down"),
        "{stderr}"
    );
    assert!(stderr.contains("1 command(s) failed"), "{stderr}");
    assert_eq!(addresses(&ns), expected_addresses(host));
    assert!(!std::fs::read_to_string(&resolv).unwrap().is_empty());
}
