//! `picaboot check`.

use anyhow::Context;

use super::ProfilesArg;
use crate::project;

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub struct CheckConfig {
    #[command(flatten)]
    profiles: ProfilesArg,
    /// JSON on stdout: `{"images", "hosts", "hardware", "clusters", "vms"}` when valid; when not, the
    /// error object with `problems` (`[{file, line, field, reason}]`).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    images: super::image::ImagesArg,
}

/// Validates every profile, and every host's storage plan, and renders nothing.
pub fn check(c: CheckConfig) -> anyhow::Result<()> {
    let dir = &c.profiles.profiles;
    // Image specs (skipped when the directory does not exist, e.g. a profiles-only checkout).
    let mut images = 0;
    if c.images.images.is_dir() {
        let n = crate::image::load(&c.images.images)?.by_name.len();
        images = n;
        if !c.json {
            outln!("{}: {n} images: ok", c.images.images.display())?;
        }
    }
    match project::open(dir) {
        Ok(p) => {
            // Rendering in memory proves that every template accepts every host.
            let names: Vec<String> = p.loaded.profiles.hosts.keys().cloned().collect();
            crate::render::render_hosts(&p, &names, Default::default())
                .context("rendering in memory")?;
            if c.json {
                outln!(
                    "{}",
                    serde_json::json!({
                        "images": images,
                        "hosts": p.loaded.profiles.hosts.len(),
                        "hardware": p.loaded.profiles.hardware.len(),
                        "clusters": p.loaded.profiles.clusters.len(),
                        "vms": p.loaded.profiles.vms.len(),
                    })
                )?;
            } else {
                for (name, cl) in &p.loaded.profiles.clusters {
                    if cl.quorum == crate::profile::Quorum::TwoNode {
                        let src = &p.loaded.cluster_sources[name];
                        outln!(
                            "note: {}:{}: quorum: two-node keeps either node quorate alone once \
                             both have been seen (wait_for_all), but nothing decides a split \
                             brain when the cluster link fails and both nodes live; quorum = \
                             \"qdevice\" with qnetd = ADDR (a corosync-qnetd host) is what Proxmox \
                             recommends for two nodes",
                            src.path().display(),
                            src.line_of("quorum")
                        )?;
                    }
                }
                outln!(
                    "{}: {} hosts, {} hardware, {} clusters, {} vms: ok",
                    dir.display(),
                    p.loaded.profiles.hosts.len(),
                    p.loaded.profiles.hardware.len(),
                    p.loaded.profiles.clusters.len(),
                    p.loaded.profiles.vms.len()
                )?;
            }
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
