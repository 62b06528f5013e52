//! `picaboot check`.

use anyhow::Context;

use super::ProfilesArg;
use crate::project;

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub struct CheckConfig {
    #[command(flatten)]
    profiles: ProfilesArg,
    /// Print the problems as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    images: super::image::ImagesArg,
}

/// Validates every profile, and every host's storage plan, and renders nothing.
pub fn check(c: CheckConfig) -> anyhow::Result<()> {
    let dir = &c.profiles.profiles;
    // Image specs (skipped when the directory does not exist, e.g. a profiles-only checkout).
    if c.images.images.is_dir() {
        let n = crate::image::load(&c.images.images)?.by_name.len();
        if !c.json {
            println!("{}: {n} images: ok", c.images.images.display());
        }
    }
    match project::open(dir) {
        Ok(p) => {
            // Rendering in memory proves that every template accepts every host.
            let names: Vec<String> = p.loaded.profiles.hosts.keys().cloned().collect();
            crate::render::render_hosts(&p, &names, Default::default())
                .context("rendering in memory")?;
            if c.json {
                println!("[]");
            } else {
                println!(
                    "{}: {} hosts, {} hardware, {} clusters: ok",
                    dir.display(),
                    p.loaded.profiles.hosts.len(),
                    p.loaded.profiles.hardware.len(),
                    p.loaded.profiles.clusters.len()
                );
            }
            Ok(())
        }
        Err(crate::profile::ProfileError::Invalid(d)) if c.json => {
            println!("{}", serde_json::to_string_pretty(&d.0.iter().map(|x| {
                serde_json::json!({"file": x.file, "line": x.line, "field": x.field, "reason": x.reason})
            }).collect::<Vec<_>>())?);
            Err(crate::profile::ProfileError::Invalid(d).into())
        }
        Err(e) => Err(e.into()),
    }
}
