//! `services.toml` checked against itself, the VM profiles and `images/`: every problem at its
//! file, line and field.

use std::collections::BTreeMap;
use std::path::Path;

use super::raw::{RawService, RawServices, RawSwarm};
use super::{Backup, Image, Member, Mount, Port, Registry, Route, Service, Services, Swarm};
use super::{Traefik, Volume};
use crate::profile::source::{Diagnostics, SourceFile};
use crate::profile::validate::Checker;
use crate::profile::{parse, read, ProfileError, Vm};

/// Ports Traefik publishes itself (entrypoints `web` and `websecure`).
pub const TRAEFIK_PORTS: [u16; 2] = [80, 443];

/// Reads `DIR/services.toml` when it exists and checks it; `images` is the directory picaboot's
/// image specs live in (`images/NAME/image.toml`).
pub(crate) fn load(
    dir: &Path,
    images: &Path,
    vms: &BTreeMap<String, Vm>,
    vm_sources: &BTreeMap<String, SourceFile>,
    diags: &mut Diagnostics,
) -> Result<Option<(Services, SourceFile)>, ProfileError> {
    // VMs whose own profile has problems (reported there) are not asked to join the swarm.
    let faulty: Vec<&str> = vm_sources
        .iter()
        .filter(|(_, src)| diags.0.iter().any(|d| d.file == src.path()))
        .map(|(name, _)| name.as_str())
        .collect();
    let path = dir.join("services.toml");
    if !path.exists() {
        return Ok(None);
    }
    let src = read(&path)?;
    let Some(raw) = parse::<RawServices>(&src, diags) else {
        return Ok(None);
    };
    let before = diags.0.len();
    let mut c = Checker { src: &src, diags };
    let swarm = verify_swarm(&mut c, &raw.swarm, vms, &faulty);
    verify_registry(&mut c, &raw.registry.vm, vms);
    if !raw.traefik.image.contains("@sha256:") || !pinned(&raw.traefik.image) {
        c.err(
            "traefik.image",
            format!(
                "`{}` is not pinned by digest (`name@sha256:<64 hex>`)",
                raw.traefik.image
            ),
        );
    }
    verify_abs(&mut c, "volume.mount", &raw.volume.mount);
    verify_abs(&mut c, "volume.brick", &raw.volume.brick);
    let mut services = Vec::new();
    for (i, s) in raw.services.iter().enumerate() {
        services.push(verify_service(&mut c, i, s, &raw, images));
    }
    verify_unique(&mut c, &raw);
    if c.diags.0.len() != before {
        return Ok(None);
    }
    let services = Services {
        volume: Volume {
            name: raw.volume.name,
            brick: raw.volume.brick,
            mount: raw.volume.mount,
        },
        swarm: swarm.expect("no problem recorded"),
        registry: Registry {
            vm: raw.registry.vm,
            address: raw.registry.address,
        },
        traefik: Traefik {
            image: raw.traefik.image,
            acme_email: raw.traefik.acme_email,
        },
        services,
    };
    Ok(Some((services, src)))
}

/// True for `name@sha256:` followed by 64 lower-case hex digits.
fn pinned(image: &str) -> bool {
    image.split_once("@sha256:").is_some_and(|(name, hex)| {
        !name.is_empty()
            && hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// An absolute path without `..` or odd characters.
fn verify_abs(c: &mut Checker<'_>, field: &str, path: &str) -> bool {
    let ok = path.starts_with('/')
        && !path.split('/').any(|p| p == ".." || p == ".")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b));
    if !ok {
        c.err(
            field,
            format!("`{path}` is not an absolute path of letters, digits and `/._-` without `..`"),
        );
    }
    ok
}

/// Swarm members: VMs with role `services`, each once, at least one manager, every services VM
/// a member (each holds a brick).
fn verify_swarm(
    c: &mut Checker<'_>,
    s: &RawSwarm,
    vms: &BTreeMap<String, Vm>,
    faulty: &[&str],
) -> Option<Swarm> {
    let mut members = Vec::new();
    if s.managers.is_empty() {
        c.err("swarm.managers", "a swarm needs at least one manager");
    }
    let lists = [
        ("managers", &s.managers, true),
        ("workers", &s.workers, false),
    ];
    for (key, list, manager) in lists {
        for (i, name) in list.iter().enumerate() {
            let field = format!("swarm.{key}[{i}]");
            let Some(vm) = vms.get(name) else {
                c.err(field, format!("no VM profile `{name}` (vms/{name}.toml)"));
                continue;
            };
            if !vm.roles.iter().any(|r| r == "services") {
                c.err(
                    field,
                    format!(
                        "VM `{name}` does not have role `services` (its roles: {})",
                        vm.roles.join(", ")
                    ),
                );
                continue;
            }
            if members.iter().any(|m: &Member| &m.vm == name) {
                c.err(field, format!("`{name}` is listed twice in the swarm"));
                continue;
            }
            let Some(address) = public_ipv4(vm) else {
                c.err(
                    field,
                    format!("VM `{name}` has no public IPv4 address to advertise"),
                );
                continue;
            };
            members.push(Member {
                vm: name.clone(),
                address,
                manager,
            });
        }
    }
    for (name, vm) in vms {
        let member = members.iter().any(|m| &m.vm == name);
        if vm.roles.iter().any(|r| r == "services") && !member && !faulty.contains(&name.as_str()) {
            c.err(
                "swarm",
                format!("VM `{name}` has role `services` but is neither a manager nor a worker"),
            );
        }
    }
    (!members.is_empty()).then(|| Swarm {
        members,
        network: s.network.clone(),
    })
}

/// A VM's first public IPv4 address (the one the peers reach).
fn public_ipv4(vm: &Vm) -> Option<std::net::Ipv4Addr> {
    vm.nics
        .iter()
        .filter_map(|n| n.ipv4.map(|a| a.addr()))
        .find(|a| !a.is_private() && !a.is_loopback())
}

/// The registry runs on a VM with role `registry`.
fn verify_registry(c: &mut Checker<'_>, name: &str, vms: &BTreeMap<String, Vm>) {
    match vms.get(name) {
        None => c.err(
            "registry.vm",
            format!("no VM profile `{name}` (vms/{name}.toml)"),
        ),
        Some(vm) if !vm.roles.iter().any(|r| r == "registry") => c.err(
            "registry.vm",
            format!(
                "VM `{name}` does not have role `registry` (its roles: {})",
                vm.roles.join(", ")
            ),
        ),
        Some(_) => {}
    }
}

/// One service's own fields.
fn verify_service(
    c: &mut Checker<'_>,
    i: usize,
    s: &RawService,
    raw: &RawServices,
    images: &Path,
) -> Service {
    let f = |k: &str| format!("services[{i}].{k}");
    let image = if s.image.contains('@') {
        if !pinned(&s.image) {
            c.err(
                f("image"),
                format!(
                    "`{}` is not pinned by digest (`name@sha256:<64 hex>`)",
                    s.image
                ),
            );
        }
        Image::Pinned(s.image.clone())
    } else {
        let spec = images.join(&s.image).join("image.toml");
        let plain = s
            .image
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !plain || !spec.is_file() {
            c.err(
                f("image"),
                format!(
                    "`{}` is neither one of picaboot's images (no {}) nor pinned by digest (`name@sha256:<64 hex>`; a tag is not a pin)",
                    s.image,
                    spec.display()
                ),
            );
        }
        Image::Local(s.image.clone())
    };
    let mut mounts = Vec::new();
    for (j, m) in s.mounts.iter().enumerate() {
        let field = f(&format!("mounts[{j}].source"));
        if verify_abs(c, &field, &m.source) && !under(&m.source, &raw.volume.mount) {
            c.err(
                field,
                format!(
                    "`{}` is not under {} (the replicated volume): a bind mount elsewhere lives on one node only",
                    m.source, raw.volume.mount
                ),
            );
        }
        mounts.push(Mount {
            source: m.source.clone(),
            target: m.target.clone(),
        });
    }
    Service {
        name: s.name.clone(),
        image,
        replicas: s.replicas.unwrap_or(1),
        networks: verify_networks(c, i, s, &raw.swarm.network),
        mounts,
        ports: verify_ports(c, i, s),
        route: verify_route(c, i, s),
        env: s.env.clone(),
        backup: verify_backup(c, i, s),
        secrets: super::secrets::verify(c, i, s),
    }
}

/// True when `path` is `dir` or below it.
fn under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Networks: the swarm's overlay is the only one declared.
fn verify_networks(c: &mut Checker<'_>, i: usize, s: &RawService, net: &str) -> Vec<String> {
    let nets = s.networks.clone().unwrap_or_else(|| vec![net.to_string()]);
    for (j, n) in nets.iter().enumerate() {
        if n != net {
            c.err(
                format!("services[{i}].networks[{j}]"),
                format!("`{n}` is not a declared network (the swarm's overlay is `{net}`)"),
            );
        }
    }
    nets
}

/// Published ports: protocol tcp or udp, port not 0.
fn verify_ports(c: &mut Checker<'_>, i: usize, s: &RawService) -> Vec<Port> {
    let mut out = Vec::new();
    for (j, p) in s.ports.iter().enumerate() {
        let protocol = p.protocol.clone().unwrap_or_else(|| "tcp".into());
        if protocol != "tcp" && protocol != "udp" {
            c.err(
                format!("services[{i}].ports[{j}].protocol"),
                format!("`{protocol}`: `tcp` or `udp`"),
            );
        }
        if p.published == 0 || p.target == 0 {
            c.err(format!("services[{i}].ports[{j}]"), "port 0 is not a port");
        }
        out.push(Port {
            published: p.published,
            target: p.target,
            protocol,
        });
    }
    out
}

/// A routed service names both its host and its container port.
fn verify_route(c: &mut Checker<'_>, i: usize, s: &RawService) -> Option<Route> {
    match (&s.host, s.port) {
        (Some(host), Some(port)) => {
            let ok = host.split('.').count() >= 2
                && host.split('.').all(|l| {
                    !l.is_empty()
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                        && l.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                });
            if !ok {
                c.err(
                    format!("services[{i}].host"),
                    format!("`{host}` is not a fully qualified lower-case host name"),
                );
            }
            Some(Route {
                host: host.clone(),
                port,
            })
        }
        (Some(_), None) => {
            c.err(
                format!("services[{i}].host"),
                "a routed service needs `port` too (the container port Traefik forwards to)",
            );
            None
        }
        (None, Some(_)) => {
            c.err(
                format!("services[{i}].port"),
                "`port` without `host`: Traefik routes by host name; name the host",
            );
            None
        }
        (None, None) => None,
    }
}

/// A backup: five cron fields, at least one dump kept.
fn verify_backup(c: &mut Checker<'_>, i: usize, s: &RawService) -> Option<Backup> {
    let b = s.backup.as_ref()?;
    let fields = b.schedule.split_whitespace().count();
    if fields != 5
        || !b
            .schedule
            .bytes()
            .all(|x| x.is_ascii_digit() || b" */,-".contains(&x))
    {
        c.err(
            format!("services[{i}].backup.schedule"),
            format!(
                "`{}` is not a cron schedule of five numeric fields",
                b.schedule
            ),
        );
    }
    if b.keep == 0 {
        c.err(
            format!("services[{i}].backup.keep"),
            "keep at least one dump",
        );
    }
    Some(Backup {
        schedule: b.schedule.clone(),
        keep: b.keep,
    })
}

/// Names, published ports and routed host names are each used once.
fn verify_unique(c: &mut Checker<'_>, raw: &RawServices) {
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    let mut ports: BTreeMap<(u16, String), String> = TRAEFIK_PORTS
        .iter()
        .map(|p| ((*p, "tcp".to_string()), "traefik".to_string()))
        .collect();
    let mut hosts: BTreeMap<&str, &str> = BTreeMap::new();
    for (i, s) in raw.services.iter().enumerate() {
        if s.name == "traefik" || names.insert(&s.name, i).is_some() {
            c.err(
                format!("services[{i}].name"),
                format!("service name `{}` is used twice", s.name),
            );
        }
        for (j, p) in s.ports.iter().enumerate() {
            let proto = p.protocol.clone().unwrap_or_else(|| "tcp".into());
            if let Some(other) = ports.insert((p.published, proto.clone()), s.name.clone()) {
                c.err(
                    format!("services[{i}].ports[{j}].published"),
                    format!(
                        "port {}/{proto} is already published by `{other}`",
                        p.published
                    ),
                );
            }
        }
        if let Some(h) = &s.host {
            if let Some(other) = hosts.insert(h, &s.name) {
                c.err(
                    format!("services[{i}].host"),
                    format!("host `{h}` is already routed to `{other}`"),
                );
            }
        }
    }
}
