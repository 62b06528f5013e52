//! One host's netboot build from its profile to published files: the mirror it comes from,
//! the archive client (through the host's install proxy), the render, the artifacts staged
//! from the signed archive and published in `OUT/HOST/netboot/`, and the cluster lock files
//! the render raised. `netboot` and `reinstall` both build through [`build_host`].

use std::path::{Path, PathBuf};

use super::{NetbootError, NetbootOptions, Summary};
use crate::debian::{Client, ClientOptions};
use crate::profile::Host;
use crate::project::Project;
use crate::render::{render_hosts, RenderOptions};

/// The mirror a `--mirror` argument names: `apt` (this machine's), a URL, or by default the
/// host's install mirror.
pub fn mirror_url(arg: Option<&str>, host: &Host) -> Result<String, NetbootError> {
    let mirror = match arg {
        Some("apt") => crate::debian::sources::system_mirror()?,
        Some(m) => m.to_string(),
        None => host.install.mirror.url(),
    };
    if !(mirror.starts_with("http://")
        || mirror.starts_with("https://")
        || mirror.starts_with("file://"))
    {
        return Err(NetbootError::Mirror(format!(
            "--mirror {mirror}: expected http://, https:// or file:// (or `apt`)"
        )));
    }
    Ok(mirror)
}

/// The Debian archive client for a host's installer: `opts`, through the host's
/// `install.proxy` when it has one.
pub fn archive_client(opts: ClientOptions, host: &Host) -> Result<Client, NetbootError> {
    let client = Client::new(opts);
    match host.install.proxy.as_deref() {
        Some(proxy) => client.with_proxy(proxy).map_err(|e| NetbootError::Profile {
            host: host.name.clone(),
            reason: format!("install.proxy: {e}"),
        }),
        None => Ok(client),
    }
}

/// A cluster lock file the render raised and [`build_host`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRecorded {
    /// The cluster.
    pub cluster: String,
    /// Its new `config_version`.
    pub config_version: u64,
    /// The lock file.
    pub path: PathBuf,
}

/// What [`build_host`] published.
#[derive(Debug)]
pub struct Built {
    /// The build's summary.
    pub summary: Summary,
    /// Where the artifacts are (`OUT/HOST/netboot/`).
    pub dir: PathBuf,
    /// Lock files written (commit them).
    pub locks: Vec<LockRecorded>,
}

/// Renders `name`, stages its netboot artifacts from `client` and publishes them under
/// `output`, then records the lock files the render raised.
pub fn build_host(
    project: &Project,
    name: &str,
    client: &Client,
    options: &NetbootOptions,
    render: RenderOptions,
    output: &Path,
) -> Result<Built, NetbootError> {
    let name = name.to_string();
    let rendered = render_hosts(project, std::slice::from_ref(&name), render)?;
    let host = &project.loaded.profiles.hosts[&name];
    let tree = &rendered.trees[&name];
    let dir = super::target_dir(output, &name);
    let (staged, summary) = super::stage(client, host, tree, &dir, options)?;
    crate::output::publish(vec![staged])?;
    let mut locks = Vec::new();
    for (path, cluster, lock) in &rendered.lock_updates {
        crate::cluster::write_lock(path, cluster, lock).map_err(|source| NetbootError::Lock {
            path: path.clone(),
            source,
        })?;
        locks.push(LockRecorded {
            cluster: cluster.clone(),
            config_version: lock.config_version,
            path: path.clone(),
        });
    }
    Ok(Built {
        summary,
        dir,
        locks,
    })
}

/// Writes `OUT/netbootxyz-custom.ipxe`: one netboot.xyz menu entry per host of the project
/// (its own kernel and initrd under `base_url`, its install NIC, `frontend` or its own),
/// reporting to `report_to` when given. Returns the file's path.
pub fn write_menu(
    project: &Project,
    frontend: Option<crate::profile::Frontend>,
    report_to: Option<std::net::SocketAddrV4>,
    base_url: &str,
    output: &Path,
) -> Result<PathBuf, NetbootError> {
    let mut entries = Vec::new();
    for host in project.loaded.profiles.hosts.values() {
        let mac = super::install_mac(host)?;
        let mut args =
            super::boot::kernel_args(host, frontend.unwrap_or(host.install.frontend), mac);
        if let Some(to) = report_to {
            args = args.with_reporting(to, host);
        }
        entries.push((host, args.to_string()));
    }
    let menu = super::boot::netbootxyz_menu(&entries, base_url);
    let path = output.join("netbootxyz-custom.ipxe");
    let tmp = output.join(".netbootxyz-custom.ipxe.tmp");
    crate::output::write_file(&tmp, menu.as_bytes(), 0o644)?;
    std::fs::rename(&tmp, &path).map_err(|source| crate::output::OutputError::Io {
        what: "rename into place",
        path: path.clone(),
        source,
    })?;
    Ok(path)
}
