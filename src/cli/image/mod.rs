//! `picaboot image build | dockerfile | list | test`.

use std::path::PathBuf;

use anyhow::Context;

use super::ProfilesArg;
use crate::image;

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

mod build;
mod test;

use build::{build, build_one, dockerfile, list, options};

/// Runs an `image` subcommand.
pub fn image(c: ImageCmd) -> anyhow::Result<()> {
    match c.cmd {
        ImageSub::Build(b) => build(b),
        ImageSub::Test(t) => test::test(t),
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
