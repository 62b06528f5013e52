//! `picaboot image build | dockerfile | list`, and the build options every image command
//! shares.

use anyhow::Context;

use super::{BuildArgs, BuildConfig, DockerfileConfig, ListConfig};
use crate::image::{self, build::BuildOptions};

pub(super) fn load(dir: &std::path::Path) -> anyhow::Result<image::Images> {
    image::load(dir).with_context(|| format!("loading image specs from {}", dir.display()))
}

/// Build options from the command line, site.toml and the environment.
pub(super) fn options(b: &BuildArgs) -> anyhow::Result<BuildOptions> {
    let mirror = match (&b.mirror, b.host_mirror) {
        (Some(m), _) => image::build::BuildMirror::Url(m.clone()),
        (None, true) => image::build::BuildMirror::Host,
        (None, false) => image::build::BuildMirror::Site,
    };
    Ok(image::build::options_for(
        &b.profiles.profiles,
        &b.images.images,
        mirror,
        b.cache.clone(),
        b.out.clone(),
    )?)
}

/// Builds `name` and its parents, printing one line (or JSON) per image.
pub(super) fn build_one(
    name: &str,
    b: &BuildArgs,
    print: bool,
) -> anyhow::Result<(image::Images, Vec<image::build::Built>)> {
    let images = load(&b.images.images)?;
    if !images.by_name.contains_key(name) {
        return Err(image::SpecError::Unknown(name.to_string()).into());
    }
    let opts = options(b)?;
    let mut progress = |m: &str| crate::progress::event(m);
    let built = image::build(&images, name, &opts, &mut progress)
        .with_context(|| format!("building {name}"))?;
    if !print {
    } else if b.json {
        outln!("{}", serde_json::to_string_pretty(&built)?)?;
    } else {
        for i in &built {
            outln!("{} {} {}", i.name, i.manifest.digest, i.archive.display())?;
        }
    }
    Ok((images, built))
}

pub(super) fn build(b: BuildConfig) -> anyhow::Result<()> {
    build_one(&b.name, &b.opts, true).map(|_| ())
}

pub(super) fn dockerfile(d: DockerfileConfig) -> anyhow::Result<()> {
    let images = load(&d.images.images)?;
    let (suite, _) = image::build::site_install(&d.profiles.profiles)?;
    let img = images
        .by_name
        .get(&d.name)
        .ok_or_else(|| image::SpecError::Unknown(d.name.clone()))?;
    let dir = d.out.join(&d.name);
    image::dockerfile::write_context(img, &suite, &dir)
        .with_context(|| format!("writing {}", dir.display()))?;
    if d.json {
        outln!(
            "{}",
            serde_json::json!({"name": d.name, "dockerfile": dir.join("Dockerfile"), "context": dir})
        )?;
    } else {
        outln!("{}", dir.join("Dockerfile").display())?;
    }
    Ok(())
}

pub(super) fn list(l: ListConfig) -> anyhow::Result<()> {
    let images = load(&l.images.images)?;
    let ordered = images.ordered();
    if l.json {
        let v: Vec<_> = ordered
            .iter()
            .map(|i| serde_json::json!({"name": i.name, "parent": i.spec.parent, "description": i.spec.description}))
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        for i in ordered {
            outln!(
                "{:<16} {:<12} {}",
                i.name,
                i.spec.parent.as_deref().unwrap_or("(debootstrap)"),
                i.spec.description
            )?;
        }
    }
    Ok(())
}
