//! `picaboot netboot`: the verified installer plus the host's files as netboot artifacts in
//! `OUT/HOST/netboot/`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use super::ProfilesArg;
use crate::debian::{self, Cache, ClientOptions};
use crate::exit_class::ExitClass as _;
use crate::netboot::{self, NetbootOptions};
use crate::profile::Frontend;
use crate::project;
use crate::render::RenderOptions;

/// Installer frontend choice on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FrontendArg {
    /// Text installer (serial console; QEMU tests).
    Text,
    /// Graphical installer (the real box).
    Gtk,
}

/// Arguments of `netboot`.
#[derive(Debug, clap::Args)]
pub struct NetbootConfig {
    /// Host (a file name in hosts/, without .toml).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub(super) host: Option<String>,
    /// Every host, one after the other, plus one combined netboot.xyz menu listing them all
    /// (OUT/netbootxyz-custom.ipxe).
    #[arg(long)]
    pub(super) all: bool,
    #[command(flatten)]
    pub(super) profiles: ProfilesArg,
    /// Output directory; the artifacts go to OUT/HOST/netboot/.
    #[arg(short, long, value_name = "OUT", default_value = "out")]
    pub(super) output: PathBuf,
    /// Installer frontend (default: the hardware profile's).
    #[arg(long, value_enum)]
    pub(super) frontend: Option<FrontendArg>,
    /// Debian mirror to fetch the installer from (default: the profile's install mirror;
    /// `apt` = this machine's apt mirror from /etc/apt/sources*).
    #[arg(long, value_name = "URL")]
    pub(super) mirror: Option<String>,
    /// OpenPGP keyring that signs the archive.
    #[arg(long, value_name = "FILE", default_value = debian::DEFAULT_KEYRING)]
    pub(super) keyring: PathBuf,
    /// Do not check the archive signature (hashes are still checked). Dangerous.
    #[arg(long)]
    pub(super) insecure: bool,
    /// Cache directory (default: $XDG_CACHE_HOME/picaboot or ~/.cache/picaboot).
    #[arg(long, value_name = "DIR", env = "PICABOOT_CACHE")]
    pub(super) cache: Option<PathBuf>,
    /// URL under which `picaboot serve` publishes OUT (for the netboot.xyz menu).
    #[arg(long, value_name = "URL", default_value = "http://${next-server}:8080")]
    pub(super) base_url: String,
    /// Address of `picaboot serve` as the box sees it (IPv4:PORT): the installer sends its
    /// syslog there over UDP (`log_host=`/`log_port=`) and reports the end of the install to
    /// `http://ADDR/progress/HOST` (run `serve --syslog` on the same address to follow it).
    #[arg(long, value_name = "ADDR:PORT")]
    pub(super) report_to: Option<std::net::SocketAddrV4>,
    /// Do not add the supplement (kernel modules and dpkg status for udebs the mirror may lack).
    #[arg(long)]
    pub(super) no_supplement: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Builds and publishes the netboot artifacts of a host (or of every host with `--all`, then
/// the combined netboot.xyz menu).
pub fn netboot(c: NetbootConfig) -> anyhow::Result<()> {
    let project = project::open(&c.profiles.profiles)?;
    let names: Vec<String> = match &c.host {
        Some(h) => vec![h.clone()],
        None => project.loaded.profiles.hosts.keys().cloned().collect(),
    };
    let mut summaries = Vec::new();
    for name in &names {
        summaries.push(netboot_host(&c, &project, name)?);
    }
    if c.all {
        let frontend = c.frontend.map(frontend_of);
        let path =
            netboot::host::write_menu(&project, frontend, c.report_to, &c.base_url, &c.output)?;
        if !c.json {
            outln!(
                "{}: netboot.xyz menu of {} hosts",
                path.display(),
                names.len()
            )?;
        }
    }
    if c.json {
        if c.all {
            outln!("{}", serde_json::to_string_pretty(&summaries)?)?;
        } else {
            outln!("{}", serde_json::to_string_pretty(&summaries[0])?)?;
        }
    }
    Ok(())
}

fn frontend_of(f: FrontendArg) -> Frontend {
    match f {
        FrontendArg::Text => Frontend::Text,
        FrontendArg::Gtk => Frontend::Gtk,
    }
}

/// Tells the user about the lock files a build raised.
pub(super) fn say_locks(locks: &[netboot::host::LockRecorded]) {
    for l in locks {
        eprintln!(
            "picaboot: corosync.conf of cluster {} changed: config_version is now {} (recorded in {}; commit it)",
            l.cluster,
            l.config_version,
            l.path.display()
        );
    }
}

/// Builds and publishes one host's netboot artifacts; prints its line unless `--json`.
fn netboot_host(
    c: &NetbootConfig,
    project: &project::Project,
    name: &str,
) -> anyhow::Result<netboot::Summary> {
    let start = Instant::now();
    let host = project.loaded.profiles.hosts.get(name).ok_or_else(|| {
        crate::render::RenderError::UnknownHost {
            name: name.to_string(),
            known: project.loaded.profiles.host_names(),
        }
    })?;
    let mirror = netboot::host::mirror_url(c.mirror.as_deref(), host)?;
    if c.insecure {
        eprintln!(
            "picaboot: WARNING: --insecure: the Debian archive signature will NOT be checked"
        );
    }
    let client = netboot::host::archive_client(
        ClientOptions {
            mirror,
            keyring: c.keyring.clone(),
            insecure: c.insecure,
            cache_dir: c.cache.clone().unwrap_or_else(Cache::default_dir),
        },
        host,
    )?;
    let opts = NetbootOptions {
        frontend: c.frontend.map(frontend_of),
        supplement: !c.no_supplement,
        base_url: c.base_url.clone(),
        keyring_append: None,
        report_to: c.report_to,
    };
    let built = match netboot::host::build_host(
        project,
        name,
        &client,
        &opts,
        RenderOptions::default(),
        &c.output,
    ) {
        Ok(b) => b,
        // Bad input is shown as it is; the environment's failures say which build.
        Err(e) if e.exit_class() == crate::exit_class::Class::User => return Err(e.into()),
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "building the netboot artifacts of {name} from {}",
                    client.mirror()
                )
            })
        }
    };
    say_locks(&built.locks);
    let summary = built.summary;
    if !c.json {
        outln!(
            "{}: {} ({:?}, kernel {}) + {} in {} ({:.2} s)",
            summary.host,
            summary.installer,
            summary.frontend,
            summary.kernel_version,
            match &summary.supplement {
                Some(s) => format!("supplement ({} modules from {})", s.modules.len(), s.source),
                None => "no supplement".into(),
            },
            built.dir.display(),
            start.elapsed().as_secs_f64()
        )?;
    }
    Ok(summary)
}
