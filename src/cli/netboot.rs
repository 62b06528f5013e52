//! `picaboot netboot`: the verified installer plus the host's files as netboot artifacts in
//! `OUT/HOST/netboot/`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use super::{ProfilesArg, UsageError};
use crate::debian::{self, Cache, Client, ClientOptions};
use crate::netboot::{self, NetbootError, NetbootOptions};
use crate::profile::Frontend;
use crate::render::{render_hosts, RenderOptions};
use crate::{output, project};

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
    host: String,
    #[command(flatten)]
    profiles: ProfilesArg,
    /// Output directory; the artifacts go to OUT/HOST/netboot/.
    #[arg(short, long, value_name = "OUT", default_value = "out")]
    output: PathBuf,
    /// Installer frontend (default: the hardware profile's).
    #[arg(long, value_enum)]
    frontend: Option<FrontendArg>,
    /// Debian mirror to fetch the installer from (default: the profile's install mirror;
    /// `apt` = this machine's apt mirror from /etc/apt/sources*).
    #[arg(long, value_name = "URL")]
    mirror: Option<String>,
    /// OpenPGP keyring that signs the archive.
    #[arg(long, value_name = "FILE", default_value = debian::DEFAULT_KEYRING)]
    keyring: PathBuf,
    /// Do not check the archive signature (hashes are still checked). Dangerous.
    #[arg(long)]
    insecure: bool,
    /// Cache directory (default: $XDG_CACHE_HOME/picaboot or ~/.cache/picaboot).
    #[arg(long, value_name = "DIR", env = "PICABOOT_CACHE")]
    cache: Option<PathBuf>,
    /// URL under which `picaboot serve` publishes OUT (for the netboot.xyz menu).
    #[arg(long, value_name = "URL", default_value = "http://${next-server}:8080")]
    base_url: String,
    /// Do not add the supplement (kernel modules and dpkg status for udebs the mirror may lack).
    #[arg(long)]
    no_supplement: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Builds and publishes a host's netboot artifacts.
pub fn netboot(c: NetbootConfig) -> anyhow::Result<()> {
    let start = Instant::now();
    let project = project::open(&c.profiles.profiles)?;
    let rendered = render_hosts(
        &project,
        std::slice::from_ref(&c.host),
        RenderOptions::default(),
    )?;
    let host = &project.loaded.profiles.hosts[&c.host];
    let tree = &rendered.trees[&c.host];
    let mirror = match c.mirror.as_deref() {
        Some("apt") => {
            debian::sources::system_mirror().context("reading this machine's apt mirror")?
        }
        Some(m) => m.to_string(),
        None => host.install.mirror.url(),
    };
    if !(mirror.starts_with("http://")
        || mirror.starts_with("https://")
        || mirror.starts_with("file://"))
    {
        return Err(UsageError(format!(
            "--mirror {mirror}: expected http://, https:// or file:// (or `apt`)"
        ))
        .into());
    }
    if c.insecure {
        eprintln!(
            "picaboot: WARNING: --insecure: the Debian archive signature will NOT be checked"
        );
    }
    let mut client = Client::new(ClientOptions {
        mirror,
        keyring: c.keyring.clone(),
        insecure: c.insecure,
        cache_dir: c.cache.clone().unwrap_or_else(Cache::default_dir),
    });
    if let Some(proxy) = host.install.proxy.as_deref() {
        client = client
            .with_proxy(proxy)
            .map_err(|e| UsageError(format!("install.proxy of {}: {e}", c.host)))?;
    }
    let opts = NetbootOptions {
        frontend: c.frontend.map(|f| match f {
            FrontendArg::Text => Frontend::Text,
            FrontendArg::Gtk => Frontend::Gtk,
        }),
        supplement: !c.no_supplement,
        base_url: c.base_url.clone(),
        keyring_append: None,
    };
    let target = netboot::target_dir(&c.output, &c.host);
    let (staged, summary) = match netboot::stage(&client, host, tree, &target, &opts) {
        Ok(x) => x,
        Err(e @ NetbootError::Profile { .. }) => return Err(UsageError(e.to_string()).into()),
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "building the netboot artifacts of {} from {}",
                    c.host,
                    client.mirror()
                )
            })
        }
    };
    output::publish(vec![staged]).with_context(|| format!("publishing {}", target.display()))?;
    super::render::record_locks(&rendered.lock_updates)?;
    if c.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "{}: {} ({:?}, kernel {}) + {} in {} ({:.2} s)",
            summary.host,
            summary.installer,
            summary.frontend,
            summary.kernel_version,
            match &summary.supplement {
                Some(s) => format!("supplement ({} modules from {})", s.modules.len(), s.source),
                None => "no supplement".into(),
            },
            target.display(),
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
