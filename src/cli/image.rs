//! `picaboot image build | dockerfile | list | test`.

use std::path::PathBuf;

use anyhow::Context;

use super::ProfilesArg;
use crate::image::{self, build::BuildOptions};

/// `image` and its subcommands.
#[derive(Debug, clap::Args)]
pub struct ImageCmd {
    /// What to do.
    #[command(subcommand)]
    pub cmd: ImageSub,
}

/// Image subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ImageSub {
    /// Build an image and its parents into an OCI layout (and NAME.oci.tar archives).
    Build(BuildConfig),
    /// Write NAME's Dockerfile and build context (for Docker users).
    Dockerfile(DockerfileConfig),
    /// List the image specs in dependency order.
    List(ListConfig),
    /// Build, then run the images with podman (here, or with --vm in a QEMU guest) and pass
    /// their declared checks; exit 3 naming each failing image and check.
    Test(TestConfig),
    /// Pack a directory as one deterministic layer (benchmarks, debugging); prints digests.
    Pack(PackConfig),
    /// Push a built image from the OCI layout to a registry (Registry API v2; credentials from
    /// PICABOOT_REGISTRY_USERNAME/PASSWORD or a Docker/podman auth file).
    Push(super::push::PushConfig),
}

/// Arguments of `image pack`.
#[derive(Debug, clap::Args)]
pub struct PackConfig {
    /// Directory (a root filesystem or an overlayfs upper directory).
    pub dir: PathBuf,
    /// Where the gzip blob goes.
    #[arg(short, long, value_name = "FILE")]
    pub out: PathBuf,
    /// Clamp mtimes to this time (default: $SOURCE_DATE_EPOCH, else 0).
    #[arg(long, env = "SOURCE_DATE_EPOCH", default_value_t = 0)]
    pub epoch: u64,
    /// Print the digests as JSON (`{"diff_id", "digest", "size"}`).
    #[arg(long)]
    pub json: bool,
}

/// Where the specs are.
#[derive(Debug, Clone, clap::Args)]
pub struct ImagesArg {
    /// Image specs directory (one `NAME/image.toml` per image).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "images",
        env = "PICABOOT_IMAGES"
    )]
    pub images: PathBuf,
}

/// Arguments of `image build` and `image test`.
#[derive(Debug, clap::Args)]
pub struct BuildConfig {
    /// Image to build (its parents are built first).
    pub name: String,
    #[command(flatten)]
    pub opts: BuildArgs,
}

/// Options shared by `image build` and `image test`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    #[command(flatten)]
    images: ImagesArg,
    #[command(flatten)]
    profiles: ProfilesArg,
    /// Output OCI layout directory.
    #[arg(short, long, value_name = "OUT", default_value = "out/images")]
    pub out: PathBuf,
    /// Debian mirror to build from (default: site.toml `[install] mirror`); images keep the
    /// site's mirror in their sources.list either way.
    #[arg(long, value_name = "URL", conflicts_with = "host_mirror")]
    pub mirror: Option<String>,
    /// Build from this machine's apt mirror (read from /etc/apt/sources.list.d/*.sources).
    #[arg(long)]
    pub host_mirror: bool,
    /// Cache directory (default: $XDG_CACHE_HOME/picaboot or ~/.cache/picaboot).
    #[arg(long, value_name = "DIR", env = "PICABOOT_CACHE")]
    pub cache: Option<PathBuf>,
    /// Print the built images as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `image test`.
#[derive(Debug, clap::Args)]
pub struct TestConfig {
    /// Images to test (each is built first, with its parents).
    #[arg(required = true)]
    pub names: Vec<String>,
    #[command(flatten)]
    pub opts: BuildArgs,
    /// Test inside one QEMU VM (a cached Debian guest with podman) instead of this host's
    /// podman; KVM when it works, TCG otherwise.
    #[arg(long)]
    pub vm: bool,
    /// Container runtime of the QEMU guest (with --vm): podman, or Debian's docker.io
    /// (`docker load` of NAME.oci.tar as it is, then `docker run`).
    #[arg(long, value_enum, default_value = "podman", requires = "vm")]
    pub runtime: crate::qemu::podman::Runtime,
    /// Write a JUnit XML report here (with --vm; default OUT/image-test.junit.xml).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

/// Arguments of `image dockerfile`.
#[derive(Debug, clap::Args)]
pub struct DockerfileConfig {
    /// Image.
    pub name: String,
    #[command(flatten)]
    images: ImagesArg,
    #[command(flatten)]
    profiles: ProfilesArg,
    /// Output directory (the context goes to OUT/NAME/).
    #[arg(short, long, value_name = "OUT", default_value = "out/dockerfiles")]
    pub out: PathBuf,
    /// Print `{"name", "dockerfile", "context"}` as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `image list`.
#[derive(Debug, clap::Args)]
pub struct ListConfig {
    #[command(flatten)]
    images: ImagesArg,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// Runs an `image` subcommand.
pub fn image(c: ImageCmd) -> anyhow::Result<()> {
    match c.cmd {
        ImageSub::Build(b) => build(b),
        ImageSub::Test(t) => test(t),
        ImageSub::Dockerfile(d) => dockerfile(d),
        ImageSub::List(l) => list(l),
        ImageSub::Push(p) => super::push::push(p),
        ImageSub::Pack(p) => {
            let f = std::fs::File::create(&p.out)
                .with_context(|| format!("creating {}", p.out.display()))?;
            let d = image::layer::pack(&p.dir, p.epoch, f)
                .with_context(|| format!("packing {}", p.dir.display()))?;
            if p.json {
                outln!(
                    "{}",
                    serde_json::json!({"diff_id": d.diff_id, "digest": d.digest, "size": d.size})
                )?;
            } else {
                outln!(
                    "diff_id {}\ndigest {}\nsize {}",
                    d.diff_id,
                    d.digest,
                    d.size
                )?;
            }
            Ok(())
        }
    }
}

fn load(dir: &std::path::Path) -> anyhow::Result<image::Images> {
    image::load(dir).with_context(|| format!("loading image specs from {}", dir.display()))
}

/// Build options from the command line, site.toml and the environment.
fn options(b: &BuildArgs) -> anyhow::Result<BuildOptions> {
    let (suite, site_mirror) = image::build::site_install(&b.profiles.profiles)?;
    let build_mirror = if let Some(m) = &b.mirror {
        m.clone()
    } else if b.host_mirror {
        image::build::host_mirror().ok_or_else(|| {
            super::exit::EnvError("--host-mirror: no http(s) URIs in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list".into())
        })?
    } else {
        site_mirror.clone()
    };
    Ok(BuildOptions {
        suite,
        site_mirror,
        build_mirror,
        cache: b.cache.clone().unwrap_or_else(image::build::default_cache),
        out: b.out.clone(),
        epoch: image::build::source_date_epoch(&b.images.images),
        revision: image::build::revision(&b.images.images),
    })
}

/// Builds `name` and its parents, printing one line (or JSON) per image.
fn build_one(
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

fn build(b: BuildConfig) -> anyhow::Result<()> {
    build_one(&b.name, &b.opts, true).map(|_| ())
}

fn test(t: TestConfig) -> anyhow::Result<()> {
    // Ctrl-C and SIGTERM remove what the run owns (containers, VM disks) before exiting.
    crate::cleanup::on_signals();
    let mut progress = |m: &str| crate::progress::event(m);
    let mut under_test = Vec::new();
    let mut host_failures = Vec::new();
    let json = t.opts.json;
    let mut checks: Vec<serde_json::Value> = Vec::new();
    let mut all_built = Vec::new();
    for name in &t.names {
        let (images, built) = build_one(name, &t.opts, !json)?;
        all_built.extend(built.iter().cloned());
        let last = built.last().expect("build returns the image itself");
        let img = &images.by_name[&last.name];
        if t.vm {
            under_test.push(crate::qemu::podman::ImageUnderTest {
                name: last.name.clone(),
                archive: last.archive.clone(),
                check: img.spec.check.run.clone(),
                timeout_s: img.spec.check.timeout,
                nofile: img.spec.check.nofile,
            });
            continue;
        }
        match image::runtest::run_check(img, &last.archive, &mut progress) {
            Ok(_) => {
                checks.push(serde_json::json!({"name": format!("{}-check", last.name), "passed": true, "detail": ""}));
                if !json {
                    outln!("{}: check passed", last.name)?;
                }
            }
            // A check that ran and failed is a result; anything else stops the run.
            Err(e) if crate::exit_class::ExitClass::exit_class(&e) == super::exit::Class::Test => {
                checks.push(serde_json::json!({"name": format!("{}-check", last.name), "passed": false, "detail": e.to_string()}));
                if !json {
                    eprintln!("picaboot: {e}");
                }
                host_failures.push(last.name.clone());
            }
            Err(other) => return Err(other.into()),
        }
    }
    if !t.vm {
        if json {
            outln!(
                "{}",
                serde_json::json!({"images": all_built, "vm": false, "checks": checks})
            )?;
        }
        return if host_failures.is_empty() {
            Ok(())
        } else {
            Err(super::TestFailed(format!("failed checks: {}", host_failures.join(", "))).into())
        };
    }
    let opts = options(&t.opts)?;
    let work = t.opts.out.join("image-test-vm");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let run = crate::qemu::podman::run(
        &under_test,
        t.runtime,
        &opts.suite,
        &opts.build_mirror,
        &work,
        &mut progress,
    )
    .context("running the image test VM")?;
    let junit = t
        .junit
        .clone()
        .unwrap_or_else(|| t.opts.out.join("image-test.junit.xml"));
    std::fs::write(&junit, run.report.junit("image-test", run.seconds))
        .with_context(|| format!("writing {}", junit.display()))?;
    if json {
        let checks: Vec<serde_json::Value> = run
            .report
            .checks
            .iter()
            .map(|c| serde_json::json!({"name": c.name, "passed": c.passed, "detail": c.detail}))
            .collect();
        outln!(
            "{}",
            serde_json::json!({
                "images": all_built, "vm": true, "runtime": format!("{:?}", t.runtime).to_lowercase(),
                "checks": checks, "seconds": run.seconds, "accel": run.accel,
                "console": run.console, "junit": junit,
            })
        )?;
    } else {
        for c in &run.report.checks {
            outln!(
                "{} {} {}",
                if c.passed { "PASS" } else { "FAIL" },
                c.name,
                c.detail
            )?;
        }
        outln!(
            "image test VM: {} checks in {:.0} s ({}); console {}; JUnit {}",
            run.report.checks.len(),
            run.seconds,
            run.accel,
            run.console.display(),
            junit.display()
        )?;
    }
    let failures = run.report.failures();
    if failures.is_empty() {
        Ok(())
    } else {
        let names: Vec<String> = failures
            .iter()
            .map(|f| format!("{} ({})", f.name, f.detail))
            .collect();
        Err(super::TestFailed(format!("failed: {}", names.join("; "))).into())
    }
}

fn dockerfile(d: DockerfileConfig) -> anyhow::Result<()> {
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

fn list(l: ListConfig) -> anyhow::Result<()> {
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
