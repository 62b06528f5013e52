//! The self-test script's expectations (the test variant's, and the post-install check's), computed from the same profiles and storage plan as
//! the production files so that the checks cannot drift from what is shipped.

use serde::Serialize;

use crate::output::Tree;
use crate::profile::{ArrayContent, Host};
use crate::storage::Plan;

use super::variant::TestVariant;

#[derive(Debug, Clone, Serialize)]
struct ArrayCheck {
    name: String,
    device: String,
    members: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
struct VolumeCheck {
    group: String,
    name: String,
    bytes: u64,
    min_bytes: u64,
    max_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
struct MountCheck {
    name: String,
    path: String,
    expect: String,
}

#[derive(Debug, Clone, Serialize)]
struct NicCheck {
    name: String,
    mac: String,
}

#[derive(Debug, Clone, Serialize)]
struct AddrCheck {
    device: String,
    family: &'static str,
    address: String,
}

#[derive(Debug, Clone, Serialize)]
struct RouteCheck {
    name: String,
    family: &'static str,
    via: String,
    device: String,
}

#[derive(Debug, Clone, Serialize)]
struct FileCheck {
    path: String,
    sha256: String,
    mode: String,
    prefix: bool,
    size: usize,
}

/// Context of the self-test script and unit.
#[derive(Debug, Clone, Serialize)]
pub struct SelftestCtx {
    source: String,
    host: super::context::HostView,
    arrays: Vec<ArrayCheck>,
    volumes: Vec<VolumeCheck>,
    mounts: Vec<MountCheck>,
    boot_disks: Vec<String>,
    kernel_params: Vec<String>,
    allowed_params: Vec<String>,
    nics: Vec<NicCheck>,
    addresses: Vec<AddrCheck>,
    routes: Vec<RouteCheck>,
    files: Vec<FileCheck>,
    ssh_keys: usize,
    /// True when the first-boot storage unit is part of the host.
    pub first_boot_unit: bool,
    /// True when corosync.conf is rendered into /etc/corosync (a standalone cluster).
    pub corosync: bool,
    /// True when Proxmox manages the cluster: /etc/corosync stays empty at install time.
    pub proxmox: bool,
    harness_uid: String,
    /// The post-install check (`reinstall`, or by hand over ssh): the same checks, printed on
    /// stdout, exit status = failed checks, no fw_cfg, no power-off.
    pub over_ssh: bool,
}

/// Files whose rendered bytes the install extends (the rendered text stays first).
const APPENDED_BY_INSTALL: &[&str] = &["etc/mdadm/mdadm.conf"];

fn mapper(group: &str, name: &str) -> String {
    format!(
        "/dev/mapper/{}-{}",
        group.replace('-', "--"),
        name.replace('-', "--")
    )
}

/// Each md array of the plan with its members.
fn array_checks(plan: &Plan) -> Vec<ArrayCheck> {
    plan.arrays
        .iter()
        .map(|a| ArrayCheck {
            name: a.name.clone(),
            device: a.device.clone(),
            members: a.members.iter().map(|m| m.disk.clone()).collect(),
        })
        .collect()
}

/// Each logical volume with the size it may have (the rest of a group: 80-110 % of the plan).
fn volume_checks(plan: &Plan) -> Vec<VolumeCheck> {
    plan.volumes
        .iter()
        .map(|v| {
            let (min, max) = if v.rest {
                (v.size / 100 * 80, v.size / 100 * 110)
            } else {
                let tol = (v.size / 50).max(16 << 20);
                (v.size.saturating_sub(tol), v.size + tol)
            };
            VolumeCheck {
                group: v.group.clone(),
                name: v.name.clone(),
                bytes: v.size,
                min_bytes: min,
                max_bytes: max,
            }
        })
        .collect()
}

/// Each mount point and the device and filesystem expected there.
fn mount_checks(plan: &Plan) -> Vec<MountCheck> {
    let mut mounts = Vec::new();
    for a in &plan.arrays {
        if let ArrayContent::Filesystem { fs, mount } = &a.content {
            mounts.push((mount.clone(), format!("{} {fs}", a.device)));
        }
    }
    for v in &plan.volumes {
        if let Some(m) = &v.mount {
            mounts.push((
                m.clone(),
                format!("{} {}", mapper(&v.group, &v.name), v.filesystem),
            ));
        }
    }
    mounts
        .into_iter()
        .map(|(path, expect)| MountCheck {
            name: if path == "/" {
                "root".into()
            } else {
                path.trim_start_matches('/').replace('/', "-")
            },
            path,
            expect,
        })
        .collect()
}

/// Every address the host's interfaces carry (public, routed, cluster link, NAT bridge).
fn address_checks(host: &Host) -> Vec<AddrCheck> {
    let n = &host.network;
    let dev = n.device.clone();
    let mut addresses = vec![AddrCheck {
        device: dev.clone(),
        family: "inet",
        address: n.ipv4.to_string(),
    }];
    let v6 = |a: Option<String>, d: &str, out: &mut Vec<AddrCheck>| {
        if let Some(a) = a {
            out.push(AddrCheck {
                device: d.to_string(),
                family: "inet6",
                address: a,
            });
        }
    };
    v6(n.ipv6.map(|a| a.to_string()), &dev, &mut addresses);
    v6(
        n.ipv6_link_local.map(|a| a.to_string()),
        &dev,
        &mut addresses,
    );
    for r in n.routed.iter().filter(|r| r.owner.is_none()) {
        addresses.push(AddrCheck {
            device: dev.clone(),
            family: "inet",
            address: r.ipv4.to_string(),
        });
        v6(r.ipv6.map(|a| a.to_string()), &dev, &mut addresses);
        v6(
            r.ipv6_link_local.map(|a| a.to_string()),
            &dev,
            &mut addresses,
        );
    }
    if let Some(l) = &host.cluster_link {
        addresses.push(AddrCheck {
            device: l.interface.clone(),
            family: "inet",
            address: l.address.to_string(),
        });
    }
    if let Some(b) = &n.nat_bridge {
        addresses.push(AddrCheck {
            device: b.name.clone(),
            family: "inet",
            address: b.address.to_string(),
        });
    }
    addresses
}

/// The default routes.
fn route_checks(host: &Host) -> Vec<RouteCheck> {
    let n = &host.network;
    let dev = n.device.clone();
    let mut routes = vec![RouteCheck {
        name: "ipv4-default".into(),
        family: "-4",
        via: n.ipv4_gateway.to_string(),
        device: dev.clone(),
    }];
    if let Some(g) = n.ipv6_gateway {
        routes.push(RouteCheck {
            name: "ipv6-default".into(),
            family: "-6",
            via: g.to_string(),
            device: dev.clone(),
        });
    }
    routes
}

/// Every rendered file with its digest and mode.
fn file_checks(rootfs: &Tree) -> Vec<FileCheck> {
    rootfs
        .files()
        .map(|(path, f)| FileCheck {
            path: path.to_string(),
            sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&f.bytes)),
            mode: format!("{:o}", f.mode),
            prefix: APPENDED_BY_INSTALL.contains(&path),
            size: f.bytes.len(),
        })
        .collect()
}

impl SelftestCtx {
    /// The expectations of `host` whose production files are `rootfs`.
    pub fn new(
        source: &str,
        view: super::context::HostView,
        host: &Host,
        plan: &Plan,
        rootfs: &Tree,
        variant: &TestVariant,
    ) -> Self {
        let arrays = array_checks(plan);
        let volumes = volume_checks(plan);
        let mounts = mount_checks(plan);
        let addresses = address_checks(host);
        let routes = route_checks(host);
        let files = file_checks(rootfs);
        SelftestCtx {
            source: source.to_string(),
            host: view,
            arrays,
            volumes,
            mounts,
            boot_disks: host.storage.boot_disks.clone(),
            kernel_params: host.install.kernel_params.clone(),
            allowed_params: variant.console_params.clone(),
            nics: host
                .nics
                .iter()
                .map(|n| NicCheck {
                    name: n.name.clone(),
                    mac: n.mac.clone(),
                })
                .collect(),
            addresses,
            routes,
            files,
            ssh_keys: host.ssh_keys.len(),
            first_boot_unit: plan
                .arrays_at(crate::profile::Stage::FirstBoot)
                .next()
                .is_some(),
            corosync: rootfs
                .files()
                .any(|(p, _)| p == "etc/corosync/corosync.conf"),
            proxmox: rootfs.files().any(|(p, _)| p == super::PROXMOX_COROSYNC),
            harness_uid: variant.harness_uid.clone(),
            over_ssh: false,
        }
    }
}
