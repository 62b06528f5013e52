//! A VM profile ([`crate::profile::Vm`], checked against its node) as the [`VmSystem`] its
//! image is built from: the node's Debian suite and mirror, the profile's NICs (matched by
//! MAC), addresses, gateways, resolvers, keys, root password hash and data disk.

use super::system::{DataDisk, Ipv4, Ipv6, Nic, VmSystem};
use crate::profile::{Host, Vm};

/// The system of `vm` on `node`, built from `mirror` (the node's own unless the caller
/// overrides it), with root's keys = the profile's plus `extra_keys` (a test's throwaway key).
pub fn system_of(vm: &Vm, node: &Host, mirror: Option<&str>, extra_keys: &[String]) -> VmSystem {
    let nics = vm
        .nics
        .iter()
        .map(|n| Nic {
            name: n.name.clone(),
            mac: n.mac.clone(),
            ipv4: n.ipv4.map(|a| Ipv4 {
                cidr: a.to_string(),
                gateway: n.ipv4_gateway,
                // A gateway outside the address's prefix (the ISP's, for a routed /32).
                onlink: n.ipv4_gateway.is_some_and(|g| !a.contains(&g)),
            }),
            ipv6: n.ipv6.map(|a| Ipv6 {
                cidr: a.to_string(),
                link_local: n.ipv6_link_local.map(|l| l.to_string()),
                gateway: n.ipv6_gateway,
            }),
        })
        .collect();
    VmSystem {
        hostname: vm.hostname.clone(),
        domain: vm.domain.clone(),
        suite: node.install.suite.clone(),
        mirror: mirror.map_or_else(|| node.install.mirror.url(), str::to_string),
        nics,
        nameservers: vm.nameservers.iter().map(|a| a.to_string()).collect(),
        ssh_keys: vm.ssh_keys.iter().chain(extra_keys).cloned().collect(),
        data_disk: vm.data_disk.as_ref().map(|d| DataDisk {
            vg: d.volume_group.clone(),
            lv: d.volume.clone(),
            mount: d.mount.clone(),
        }),
        packages: super::roles::packages(&vm.roles),
        root_password_hash: Some(vm.root_password_hash.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pica01_maps_onto_the_system_the_wiki_describes() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        let p = crate::profile::load(&dir).unwrap().profiles;
        let vm = &p.vms["pica01"];
        let s = system_of(
            vm,
            &p.hosts[&vm.node],
            None,
            &["ssh-ed25519 AAAA test".into()],
        );
        s.validate().unwrap();
        let public = &s.nics[0];
        assert_eq!(public.mac, vm.nics[0].mac);
        let v4 = public.ipv4.as_ref().unwrap();
        assert_eq!(v4.cidr, "91.224.148.57/32");
        assert!(v4.onlink, "the ISP's gateway is outside a /32");
        assert_eq!(
            public.ipv6.as_ref().unwrap().link_local.as_deref(),
            Some("fe80::80:39/64")
        );
        let private = s.nics[1].ipv4.as_ref().unwrap();
        assert_eq!(
            (private.cidr.as_str(), private.gateway),
            ("10.0.42.3/24", None)
        );
        assert_eq!(s.ssh_keys.len(), vm.ssh_keys.len() + 1);
        assert_eq!(s.mirror, p.hosts["alice"].install.mirror.url());
        assert_eq!(s.data_disk.as_ref().unwrap().mount, "/gluster-data");
    }
}
