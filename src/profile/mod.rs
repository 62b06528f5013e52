//! Declarative profiles: `site.toml`, `hardware/*.toml`, `hosts/*.toml`, `clusters/*.toml`.
//!
//! [`load`] reads a profiles directory, deserializes every file (unknown keys are errors),
//! validates each one and then the references between them, and returns either the typed
//! [`Profiles`] or every problem as `file:line: field: reason`.

mod model;
pub mod raw;
pub mod services;
mod source;
pub mod text;
pub mod units;
mod validate;
mod vms;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub use model::*;
pub use source::{Diagnostic, Diagnostics, SourceFile};
pub use validate::parse_mirror;
use validate::{Checker, Claim};

/// Why profiles could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A profile path is not a regular file (a FIFO, a device, a directory).
    #[error("{path}: not a regular file (profiles are read only from regular files)")]
    NotRegular {
        /// The path.
        path: PathBuf,
    },
    /// A profile file is larger than picaboot reads.
    #[error("{path}: larger than {limit} bytes (profiles are a few KiB)")]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// One or more profiles are invalid.
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// Validated profiles plus the sources they came from, so that later stages (storage
/// planning, rendering) can report problems at the right line too.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The profiles directory.
    pub dir: PathBuf,
    /// The validated model.
    pub profiles: Profiles,
    /// Host sources by host name.
    pub host_sources: BTreeMap<String, SourceFile>,
    /// Cluster sources by cluster profile name.
    pub cluster_sources: BTreeMap<String, SourceFile>,
    /// VM sources by VM profile name.
    pub vm_sources: BTreeMap<String, SourceFile>,
    /// `services.toml`, when there is one.
    pub services_source: Option<SourceFile>,
}

/// File name of a cluster's config_version record, beside the cluster profile.
pub fn cluster_lock_path(dir: &Path, cluster_profile: &str) -> PathBuf {
    dir.join("clusters")
        .join(format!("{cluster_profile}.lock.toml"))
}

/// The largest profile file read (the shipped ones are a few KiB).
pub const MAX_PROFILE_BYTES: u64 = 1 << 20;

/// Reads one profile: only a regular file (opened non-blocking, so that a FIFO or a device
/// does not hang the open, then checked with fstat), at most [`MAX_PROFILE_BYTES`].
fn read(path: &Path) -> Result<SourceFile, ProfileError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| ProfileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(ProfileError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    if meta.len() > MAX_PROFILE_BYTES {
        return Err(ProfileError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_PROFILE_BYTES,
        });
    }
    let mut bytes = Vec::new();
    file.take(MAX_PROFILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_PROFILE_BYTES {
        return Err(ProfileError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_PROFILE_BYTES,
        });
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    Ok(SourceFile::new(path, text))
}

/// The `*.toml` files of a sub-directory, sorted, skipping `*.lock.toml`.
fn toml_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, ProfileError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ProfileError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(|source| ProfileError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".toml") {
            if !stem.ends_with(".lock") && !stem.starts_with('.') {
                out.push((stem.to_string(), e.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Deserializes a file, turning a serde error into a diagnostic at its line and field.
fn parse<T: DeserializeOwned>(src: &SourceFile, diags: &mut Diagnostics) -> Option<T> {
    // Every string is one line of printable text before any field is looked at.
    if !text::check_document(src, diags) {
        return None;
    }
    match toml::from_str::<T>(src.text()) {
        Ok(v) => Some(v),
        Err(e) => {
            let offset = e.span().map_or(0, |s| s.start);
            let msg = e.message().trim().to_string();
            // serde names the missing or unknown key in backticks; prefer it as the field.
            let named = msg.split('`').nth(1).map(str::to_string);
            let at = src.path_at(offset);
            let field = match (&at, &named) {
                (Some(p), Some(n)) if msg.starts_with("missing field") => format!("{p}.{n}"),
                (None, Some(n)) if msg.starts_with("missing field") => n.clone(),
                (Some(p), _) => p.clone(),
                (None, Some(n)) => n.clone(),
                (None, None) => key_on_line(src.text(), offset).unwrap_or_else(|| "(file)".into()),
            };
            diags.push(Diagnostic {
                file: src.path().to_path_buf(),
                line: src.line_of_offset(offset),
                field,
                reason: msg,
            });
            None
        }
    }
}

/// The key assigned on the line holding `offset` (for syntax errors, where no parse exists).
fn key_on_line(text: &str, offset: usize) -> Option<String> {
    let start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let key = line.split_once('=')?.0.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('#') {
        return None;
    }
    // The enclosing table header, if any: `[install]` or `[[storage.arrays]]`.
    let table = text[..start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_string(),
    })
}

/// Checked profiles by name, and the source of every file read (for later diagnostics).
type Sourced<T> = (BTreeMap<String, T>, BTreeMap<String, SourceFile>);

/// Hardware profiles by name, with their install layer and source.
type HardwareTable = BTreeMap<String, (Hardware, raw::RawInstall, SourceFile)>;

/// Hardware profiles by name (with their install layer and source), and the names of those
/// that exist but are invalid (their own errors are reported): hosts on them are not checked
/// against them, nor told the profile does not exist.
fn load_hardware(
    dir: &Path,
    diags: &mut Diagnostics,
) -> Result<(HardwareTable, BTreeSet<String>), ProfileError> {
    let mut hardware = BTreeMap::new();
    // Hardware profiles that exist but are invalid (their own errors are reported): hosts on
    // them are not checked against them, nor told the profile does not exist.
    let mut invalid_hardware = BTreeSet::new();
    for (name, path) in toml_files(&dir.join("hardware"))? {
        let src = read(&path)?;
        if let Some(raw) = parse::<raw::RawHardware>(&src, diags) {
            let mut c = Checker { src: &src, diags };
            let before = c.diags.0.len();
            match validate::verify_hardware(&mut c, &name, &raw) {
                Some(hw) if c.diags.0.len() == before => {
                    hardware.insert(name, (hw, raw.install.clone(), src.clone()));
                }
                _ => {
                    invalid_hardware.insert(name);
                }
            }
        } else {
            invalid_hardware.insert(name);
        }
    }

    Ok((hardware, invalid_hardware))
}

/// Host profiles checked against their hardware and the site's install layer.
fn load_hosts(
    dir: &Path,
    hardware: &HardwareTable,
    invalid_hardware: &BTreeSet<String>,
    site_install: Option<(&raw::RawInstall, &SourceFile)>,
    diags: &mut Diagnostics,
) -> Result<Sourced<Host>, ProfileError> {
    let mut hosts = BTreeMap::new();
    let mut host_sources = BTreeMap::new();
    for (name, path) in toml_files(&dir.join("hosts"))? {
        let src = read(&path)?;
        if let Some(raw) = parse::<raw::RawHost>(&src, diags) {
            if invalid_hardware.contains(&raw.hardware) {
                host_sources.insert(name, src);
                continue;
            }
            let mut c = Checker { src: &src, diags };
            if let Some(h) = validate::verify_host(&mut c, &name, &raw, hardware, site_install) {
                hosts.insert(name.clone(), h);
            }
        }
        host_sources.insert(name, src);
    }

    Ok((hosts, host_sources))
}

/// Cluster profiles, each with its lock file when there is one.
fn load_clusters(dir: &Path, diags: &mut Diagnostics) -> Result<Sourced<Cluster>, ProfileError> {
    let mut clusters = BTreeMap::new();
    let mut cluster_sources = BTreeMap::new();
    let clusters_dir = dir.join("clusters");
    let cluster_files = if clusters_dir.exists() {
        toml_files(&clusters_dir)?
    } else {
        Vec::new()
    };
    for (name, path) in cluster_files {
        let src = read(&path)?;
        let lock_path = cluster_lock_path(dir, &name);
        let lock = if lock_path.exists() {
            let lock_src = read(&lock_path)?;
            parse::<raw::RawClusterLock>(&lock_src, diags).map(|l| ClusterLock {
                config_version: l.config_version,
                content_sha256: l.content_sha256,
            })
        } else {
            None
        };
        if let Some(raw) = parse::<raw::RawCluster>(&src, diags) {
            let mut c = Checker { src: &src, diags };
            if let Some(cl) = validate::verify_cluster(&mut c, &name, &raw, lock) {
                clusters.insert(name.clone(), cl);
            }
        }
        cluster_sources.insert(name, src);
    }

    Ok((clusters, cluster_sources))
}

/// Loads and validates every profile under `dir`.
pub fn load(dir: &Path) -> Result<Loaded, ProfileError> {
    let mut diags = Diagnostics::default();

    let site_src = read(&dir.join("site.toml"))?;
    let site: Option<raw::RawSite> = parse(&site_src, &mut diags);

    let (hardware, invalid_hardware) = load_hardware(dir, &mut diags)?;
    let site_install = site.as_ref().map(|s| (&s.install, &site_src));
    let (mut hosts, host_sources) =
        load_hosts(dir, &hardware, &invalid_hardware, site_install, &mut diags)?;
    let (clusters, cluster_sources) = load_clusters(dir, &mut diags)?;

    verify_cluster_membership(
        &hosts,
        &host_sources,
        &clusters,
        &cluster_sources,
        &mut diags,
    );
    verify_unique_values(&hosts, &host_sources, &mut diags);
    let (vms, vm_sources) = vms::load_vms(dir, &mut diags)?;
    vms::verify_placement(
        vms::Placement {
            hosts: &mut hosts,
            host_sources: &host_sources,
            vms: &vms,
            vm_sources: &vm_sources,
        },
        &mut diags,
    );
    // picaboot's image specs live beside the profiles directory.
    let images = dir.parent().unwrap_or(Path::new(".")).join("images");
    let services = services::load(dir, &images, &vms, &vm_sources, &mut diags)?;
    validate::backup::verify_backup_mounts(
        &hosts,
        &host_sources,
        &clusters,
        &cluster_sources,
        &mut diags,
    );

    let vpro_jump_host = site
        .as_ref()
        .and_then(|s| s.vpro.as_ref())
        .and_then(|v| v.jump_host.clone())
        .filter(|j| {
            validate::verify_jump_host(
                &mut Checker {
                    src: &site_src,
                    diags: &mut diags,
                },
                j,
            )
        });
    if !diags.is_empty() || site.is_none() {
        return Err(ProfileError::Invalid(diags.finish()));
    }
    Ok(Loaded {
        dir: dir.to_path_buf(),
        profiles: Profiles {
            organisation: site.map(|s| s.organisation).unwrap_or_default(),
            vpro_jump_host,
            hardware: hardware.into_iter().map(|(k, (hw, ..))| (k, hw)).collect(),
            hosts,
            clusters,
            vms,
            services: services.as_ref().map(|(s, _)| s.clone()),
        },
        host_sources,
        cluster_sources,
        vm_sources,
        services_source: services.map(|(_, src)| src),
    })
}

/// Host <-> cluster references: the cluster exists, lists the host, and every member has a
/// cluster address on one shared network.
fn verify_cluster_membership(
    hosts: &BTreeMap<String, Host>,
    host_sources: &BTreeMap<String, SourceFile>,
    clusters: &BTreeMap<String, Cluster>,
    cluster_sources: &BTreeMap<String, SourceFile>,
    diags: &mut Diagnostics,
) {
    for (name, h) in hosts {
        let src = &host_sources[name];
        let Some(cname) = &h.cluster else { continue };
        match clusters.get(cname) {
            None if !cluster_sources.contains_key(cname) => diags.push(src.diag(
                "cluster",
                format!("no cluster profile `{cname}` (clusters/{cname}.toml)"),
            )),
            None => {} // the cluster file itself is invalid and reported
            Some(c) if !c.nodes.iter().any(|n| &n.host == name) => diags.push(src.diag(
                "cluster",
                format!("cluster `{cname}` does not list `{name}` among its nodes"),
            )),
            Some(_) if h.cluster_link.is_none() => diags.push(src.diag(
                "cluster-link",
                format!("a member of cluster `{cname}` needs a `cluster-link` address"),
            )),
            Some(_) => {}
        }
    }
    for (cname, c) in clusters {
        let src = &cluster_sources[cname];
        let mut first_net = None;
        for (i, n) in c.nodes.iter().enumerate() {
            let field = format!("nodes[{i}].host");
            let Some(h) = hosts.get(&n.host) else {
                if !host_sources.contains_key(&n.host) {
                    diags.push(src.diag(
                        field.clone(),
                        format!("no host profile `{}` (hosts/{}.toml)", n.host, n.host),
                    ));
                }
                continue;
            };
            if h.cluster.as_deref() != Some(cname) {
                diags.push(src.diag(
                    field.clone(),
                    format!(
                        "host `{}` does not name cluster `{cname}` in its profile",
                        n.host
                    ),
                ));
            }
            if let Some(l) = &h.cluster_link {
                match first_net {
                    None => first_net = Some((l.address.trunc(), n.host.clone())),
                    Some((net, ref other)) if net != l.address.trunc() => diags.push(src.diag(
                        field,
                        format!(
                            "cluster address {} of `{}` is not on {net}, the network of `{other}`",
                            l.address, n.host
                        ),
                    )),
                    Some(_) => {}
                }
            }
        }
    }
}

/// Host names, MACs and addresses must be unique across every host.
fn verify_unique_values(
    hosts: &BTreeMap<String, Host>,
    host_sources: &BTreeMap<String, SourceFile>,
    diags: &mut Diagnostics,
) {
    let mut names = Vec::new();
    let mut macs = Vec::new();
    let mut addrs = Vec::new();
    for (name, h) in hosts {
        let src = &host_sources[name];
        let claim = |field: String| Claim { src, field };
        names.push((h.hostname.clone(), claim("hostname".into())));
        for n in &h.nics {
            macs.push((n.mac.clone(), claim(format!("nics.{}.mac", n.name))));
        }
        let net = &h.network;
        let mut add = |a: IpAddr, field: String| addrs.push((a.to_string(), claim(field)));
        add(IpAddr::V4(net.ipv4.addr()), "network.ipv4".into());
        if let Some(a) = net.ipv6 {
            add(IpAddr::V6(a.addr()), "network.ipv6".into());
        }
        if let Some(a) = net.ipv6_link_local {
            add(IpAddr::V6(a.addr()), "network.ipv6-link-local".into());
        }
        for (i, r) in net.routed.iter().enumerate() {
            add(
                IpAddr::V4(r.ipv4.addr()),
                format!("network.routed[{i}].ipv4"),
            );
            if let Some(a) = r.ipv6 {
                add(IpAddr::V6(a.addr()), format!("network.routed[{i}].ipv6"));
            }
            if let Some(a) = r.ipv6_link_local {
                add(
                    IpAddr::V6(a.addr()),
                    format!("network.routed[{i}].ipv6-link-local"),
                );
            }
        }
        if let Some(l) = &h.cluster_link {
            add(IpAddr::V4(l.address.addr()), "cluster-link.address".into());
        }
        if let Some(v) = h.vpro_address {
            add(IpAddr::V4(v), "vpro.address".into());
        }
    }
    validate::verify_unique(diags, "host name", names);
    validate::verify_unique(diags, "MAC", macs);
    validate::verify_unique(diags, "address", addrs);
}

crate::exit_class::fixed_class!(crate::exit_class::Class::User; ProfileError);
