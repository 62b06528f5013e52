//! [`VmSystem`]: exactly what a VM's own system needs to be built (names, mirror, addresses,
//! keys, data disk), independent of where the VM runs. Profiles are mapped onto it; the test
//! builds pica01's value with [`VmSystem::pica01_for_test`].

use std::net::{Ipv4Addr, Ipv6Addr};

/// A VM's system, as the image builder and the self-test see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VmSystem {
    /// Host name (`pica01`).
    pub hostname: String,
    /// DNS domain (`picasoft.net`); the FQDN is `hostname.domain`.
    pub domain: String,
    /// Debian suite (`trixie`).
    pub suite: String,
    /// Mirror URL written into the VM's apt sources.
    pub mirror: String,
    /// NICs in the VM's order (net0, net1…).
    pub nics: Vec<Nic>,
    /// Resolvers, in order.
    pub nameservers: Vec<String>,
    /// Admins' ssh public keys (root's `authorized_keys`).
    pub ssh_keys: Vec<String>,
    /// The second disk's volume group, volume and mount.
    pub data_disk: Option<DataDisk>,
    /// Debian packages installed beyond the base (its roles': [`super::roles::packages`]),
    /// sorted.
    pub packages: Vec<String>,
    /// root's password hash (`crypt(5)`), `None`: root has no password (ssh keys only).
    #[serde(skip)]
    pub root_password_hash: Option<String>,
}

/// One NIC, matched by MAC in the guest (names do not matter).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Nic {
    /// Name for files and checks (`public`, `private`).
    pub name: String,
    /// MAC address, lower case `52:54:00:…`.
    pub mac: String,
    /// IPv4 address, if any.
    pub ipv4: Option<Ipv4>,
    /// IPv6 addresses, if any.
    pub ipv6: Option<Ipv6>,
}

/// IPv4 configuration of a NIC.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Ipv4 {
    /// Address with prefix (`91.224.148.57/32`).
    pub cidr: String,
    /// Default gateway, if this NIC carries the default route.
    pub gateway: Option<Ipv4Addr>,
    /// The gateway is outside the address's prefix (a /32 routed by the ISP): `onlink`.
    pub onlink: bool,
}

/// IPv6 configuration of a NIC.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Ipv6 {
    /// Global address with prefix (`2a03:7220:8080:3900::1/56`).
    pub cidr: String,
    /// The fixed link-local address with prefix the ISP routes to (`fe80::80:39/64`), which
    /// replaces the one derived from the MAC.
    pub link_local: Option<String>,
    /// Default gateway (a link-local address: `fe80::31`).
    pub gateway: Option<Ipv6Addr>,
}

/// The data disk: one PV on the whole second disk, a VG, one LV over all of it, ext4.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DataDisk {
    /// Volume group (`vg01`).
    pub vg: String,
    /// Logical volume (`data`), all free space.
    pub lv: String,
    /// Mount point (`/gluster-data`).
    pub mount: String,
}

/// A [`VmSystem`] field that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("VM system {system}: {field}: {problem}")]
pub struct SystemError {
    /// Host name of the system.
    pub system: String,
    /// The field (`nics[0].ipv4.cidr`).
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

crate::exit_class::fixed_class!(crate::exit_class::Class::User; SystemError);

impl VmSystem {
    /// pica01 as the wiki describes it (alice's routed .57 and its IPv6 /56 and link-local on
    /// vmbr0; 10.0.42.3 on alice's private bridge vmbr1), with `ssh_keys` as root's keys and
    /// the mirror given. Used by `picaboot test vm pica01` until the profile maps onto it.
    pub fn pica01_for_test(mirror: &str, ssh_keys: Vec<String>) -> VmSystem {
        VmSystem {
            hostname: "pica01".into(),
            domain: "picasoft.net".into(),
            suite: "trixie".into(),
            mirror: mirror.into(),
            nics: vec![
                Nic {
                    name: "public".into(),
                    mac: "52:54:00:91:57:01".into(),
                    ipv4: Some(Ipv4 {
                        cidr: "91.224.148.57/32".into(),
                        gateway: Some(Ipv4Addr::new(91, 224, 148, 0)),
                        onlink: true,
                    }),
                    ipv6: Some(Ipv6 {
                        cidr: "2a03:7220:8080:3900::1/56".into(),
                        link_local: Some("fe80::80:39/64".into()),
                        gateway: Some("fe80::31".parse().expect("literal")),
                    }),
                },
                Nic {
                    name: "private".into(),
                    mac: "52:54:00:10:42:03".into(),
                    ipv4: Some(Ipv4 {
                        cidr: "10.0.42.3/24".into(),
                        gateway: None,
                        onlink: false,
                    }),
                    ipv6: None,
                },
            ],
            nameservers: vec!["91.224.148.10".into(), "91.224.149.254".into()],
            ssh_keys,
            data_disk: Some(DataDisk {
                vg: "vg01".into(),
                lv: "data".into(),
                mount: "/gluster-data".into(),
            }),
            packages: Vec::new(),
            root_password_hash: None,
        }
    }

    /// The FQDN.
    pub fn fqdn(&self) -> String {
        format!("{}.{}", self.hostname, self.domain)
    }

    /// Checks every field that ends up in a file, naming the first bad one.
    pub fn validate(&self) -> Result<(), SystemError> {
        let err = |field: String, problem: String| SystemError {
            system: self.hostname.clone(),
            field,
            problem,
        };
        let label = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !s.starts_with('-')
        };
        if !label(&self.hostname) {
            return Err(err("hostname".into(), "not a host name label".into()));
        }
        if !self.domain.split('.').all(label) {
            return Err(err("domain".into(), "not a DNS domain".into()));
        }
        if !label(&self.suite) {
            return Err(err("suite".into(), "not a Debian suite name".into()));
        }
        if !(self.mirror.starts_with("http://") || self.mirror.starts_with("https://"))
            || self.mirror.contains(char::is_whitespace)
        {
            return Err(err("mirror".into(), "not an http(s) URL".into()));
        }
        if self.nics.is_empty() {
            return Err(err("nics".into(), "no NIC".into()));
        }
        for (i, n) in self.nics.iter().enumerate() {
            n.validate()
                .map_err(|(f, p)| err(format!("nics[{i}].{f}"), p))?;
        }
        for (i, ns) in self.nameservers.iter().enumerate() {
            if ns.parse::<std::net::IpAddr>().is_err() {
                return Err(err(format!("nameservers[{i}]"), "not an IP address".into()));
            }
        }
        for (i, k) in self.ssh_keys.iter().enumerate() {
            let kind = k.split_whitespace().next().unwrap_or("");
            if !(kind.starts_with("ssh-") || kind.starts_with("ecdsa-")) || k.contains('\n') {
                return Err(err(
                    format!("ssh_keys[{i}]"),
                    "not one ssh public key".into(),
                ));
            }
        }
        for (i, p) in self.packages.iter().enumerate() {
            if !super::roles::is_package_name(p) {
                return Err(err(
                    format!("packages[{i}]"),
                    "not a Debian package name".into(),
                ));
            }
        }
        if let Some(d) = &self.data_disk {
            let name = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            };
            if !name(&d.vg) || !name(&d.lv) {
                return Err(err("data_disk".into(), "bad VG or LV name".into()));
            }
            if !d.mount.starts_with('/') || d.mount.contains(char::is_whitespace) {
                return Err(err("data_disk.mount".into(), "not an absolute path".into()));
            }
        }
        if let Some(h) = &self.root_password_hash {
            if !h.starts_with('$') || h.contains([':', '\n']) {
                return Err(err(
                    "root_password_hash".into(),
                    "not a crypt(5) hash".into(),
                ));
            }
        }
        Ok(())
    }
}

impl Nic {
    fn validate(&self) -> Result<(), (String, String)> {
        let mac_ok = self.mac.len() == 17
            && self.mac.split(':').count() == 6
            && self.mac.split(':').all(|b| {
                b.len() == 2
                    && b.bytes()
                        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
            });
        if !mac_ok {
            return Err(("mac".into(), "not a lower-case MAC address".into()));
        }
        if !self
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            || self.name.is_empty()
        {
            return Err(("name".into(), "not a lower-case word".into()));
        }
        if let Some(v4) = &self.ipv4 {
            cidr::<Ipv4Addr>(&v4.cidr, 32).map_err(|p| ("ipv4.cidr".to_string(), p))?;
        }
        if let Some(v6) = &self.ipv6 {
            cidr::<Ipv6Addr>(&v6.cidr, 128).map_err(|p| ("ipv6.cidr".to_string(), p))?;
            if let Some(ll) = &v6.link_local {
                let (a, _) =
                    cidr::<Ipv6Addr>(ll, 128).map_err(|p| ("ipv6.link_local".to_string(), p))?;
                if a.segments()[0] & 0xffc0 != 0xfe80 {
                    return Err(("ipv6.link_local".into(), "not in fe80::/10".into()));
                }
            }
        }
        Ok(())
    }
}

/// Parses `ADDR/PREFIX` with a prefix up to `max`.
fn cidr<A: std::str::FromStr>(s: &str, max: u8) -> Result<(A, u8), String> {
    let (a, p) = s.split_once('/').ok_or("no /prefix")?;
    let a = a.parse::<A>().map_err(|_| "not an address".to_string())?;
    let p = p
        .parse::<u8>()
        .ok()
        .filter(|p| *p <= max)
        .ok_or("bad prefix length")?;
    Ok((a, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pica01_is_valid_and_bad_fields_are_named() {
        let s = VmSystem::pica01_for_test("http://deb.example/debian", vec![]);
        s.validate().unwrap();
        let mut bad = s.clone();
        bad.nics[0].ipv4.as_mut().unwrap().cidr = "91.224.148.57/33".into();
        let e = bad.validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "VM system pica01: nics[0].ipv4.cidr: bad prefix length"
        );
        let mut bad = s.clone();
        bad.nics[1].mac = "52:54:00:10:42:0G".into();
        assert_eq!(bad.validate().unwrap_err().field, "nics[1].mac");
        let mut bad = s.clone();
        bad.ssh_keys = vec!["ssh-ed25519 AAAA x\nssh-rsa B".into()];
        assert_eq!(bad.validate().unwrap_err().field, "ssh_keys[0]");
        let mut bad = s;
        bad.nics[0].ipv6.as_mut().unwrap().link_local = Some("2a03::1/64".into());
        assert_eq!(bad.validate().unwrap_err().field, "nics[0].ipv6.link_local");
    }
}
