//! `picaboot image build`: parents first, each layer cached by a key over its inputs, the base
//! from `debootstrap --variant=minbase`, every step in an isolated root over overlayfs, the
//! upper directory packed as the layer, then config, manifest, layout and archive.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::layer::{self, LayerDigest};
use super::oci::{self, Descriptor};
use super::spec::{Image, Images, SpecError};
use crate::exec::{self, ExecError};

/// The command every build process runs under: `setpriv --pdeathsig KILL` execs `unshare`,
/// which gives the work a private mount namespace and runs it as PID 1 of a new PID namespace,
/// killed when unshare dies (`--kill-child`); the kernel then kills everything in that
/// namespace. So a picaboot killed by a signal (even SIGKILL) leaves no debootstrap, apt or
/// dpkg running on into the cache. Append the program and its arguments.
fn in_build_namespace() -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--pdeathsig", "KILL", "--", "unshare"]).args([
        "--mount",
        "--pid",
        "--fork",
        "--kill-child",
        "--propagation",
        "private",
        "--",
    ]);
    c
}

/// Bumped whenever the way a layer is made changes (invalidates every cache entry).
const FORMAT: &str = "picaboot-image-layer-v3";

/// Default `PATH` of every image.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything a build needs besides the specs.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Debian suite of the base (site.toml `[install] suite`).
    pub suite: String,
    /// Mirror written into the images' `/etc/apt/sources.list` (site.toml `[install] mirror`).
    pub site_mirror: String,
    /// Mirror used while building (`--mirror`, this machine's apt sources, or the site's).
    pub build_mirror: String,
    /// Cache directory (`$XDG_CACHE_HOME/picaboot`).
    pub cache: PathBuf,
    /// Output OCI layout directory; archives go beside it as `NAME.oci.tar` inside it.
    pub out: PathBuf,
    /// `SOURCE_DATE_EPOCH`: mtimes are clamped to it and it is the images' creation time.
    pub epoch: u64,
    /// Source revision recorded in the `org.opencontainers.image.revision` label.
    pub revision: String,
}

/// One image built (or found in the cache).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Built {
    /// Image name (its ref name in the layout).
    pub name: String,
    /// Manifest descriptor.
    pub manifest: Descriptor,
    /// The `oci-archive` file.
    pub archive: PathBuf,
    /// True when no layer had to be built.
    pub cached: bool,
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The specs are invalid or the image is unknown.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A step or tool failed.
    #[error("{image}: {what}: {source}")]
    Step {
        /// Image being built.
        image: String,
        /// The step.
        what: String,
        /// The failure (command, status, tail of output).
        source: Box<ExecError>,
    },
    /// A release download could not be fetched.
    #[error("{image}: source unreachable: {url} (pinned sha256 {sha256}): {detail}")]
    Unreachable {
        /// Image being built.
        image: String,
        /// The URL.
        url: String,
        /// Its pinned digest.
        sha256: String,
        /// Why.
        detail: String,
    },
    /// A download did not match its pinned digest.
    #[error("{image}: {url}: sha256 {got} does not match the pinned {want}; nothing was used")]
    Digest {
        /// Image being built.
        image: String,
        /// The URL.
        url: String,
        /// The digest received.
        got: String,
        /// The pinned digest.
        want: String,
    },
    /// A build from this machine's mirror, and this machine has none in its apt sources.
    #[error("--host-mirror: no http(s) URIs in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list")]
    NoHostMirror,
    /// A file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: io::Error,
    },
}

fn io_ctx(what: impl Into<String>) -> impl FnOnce(io::Error) -> BuildError {
    let what = what.into();
    move |source| BuildError::Io { what, source }
}

/// A layer of the chain, built or cached.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct LayerRecord {
    key: String,
    digest: LayerDigest,
    created_by: String,
}

impl LayerRecord {
    fn tree(&self, cache: &Path) -> PathBuf {
        cache.join("layers").join(&self.key).join("tree")
    }
}

/// This machine's Debian mirror, read from its apt sources at run time (for development and
/// tests; never stored in the repository).
pub fn host_mirror() -> Option<String> {
    crate::debian::sources::system_mirror().ok()
}

/// Where a build takes its packages from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildMirror {
    /// The site's mirror (site.toml `[install] mirror`).
    Site,
    /// This machine's apt mirror ([`host_mirror`]).
    Host,
    /// This URL.
    Url(String),
}

/// The options `picaboot image build` uses: suite and site mirror from `profiles/site.toml`,
/// the build mirror as asked, the epoch and revision from the images' git history, the cache
/// (default [`default_cache`]) and the output layout `out`.
pub fn options_for(
    profiles: &Path,
    images: &Path,
    mirror: BuildMirror,
    cache: Option<PathBuf>,
    out: PathBuf,
) -> Result<BuildOptions, BuildError> {
    let (suite, site_mirror) = site_install(profiles)?;
    let build_mirror = match mirror {
        BuildMirror::Site => site_mirror.clone(),
        BuildMirror::Host => host_mirror().ok_or(BuildError::NoHostMirror)?,
        BuildMirror::Url(u) => u,
    };
    Ok(BuildOptions {
        suite,
        site_mirror,
        build_mirror,
        cache: cache.unwrap_or_else(default_cache),
        out,
        epoch: source_date_epoch(images),
        revision: revision(images),
    })
}

/// `[install] suite` and `mirror` of `site.toml` in the profiles directory.
pub fn site_install(profiles: &Path) -> Result<(String, String), BuildError> {
    let path = profiles.join("site.toml");
    let text = fs::read_to_string(&path).map_err(io_ctx(format!("reading {}", path.display())))?;
    let v: toml::Value = toml::from_str(&text).map_err(|e| BuildError::Io {
        what: format!("parsing {}", path.display()),
        source: io::Error::other(e.to_string()),
    })?;
    let get = |k: &str| {
        v.get("install")
            .and_then(|i| i.get(k))
            .and_then(|s| s.as_str())
            .map(str::to_string)
            .ok_or_else(|| BuildError::Io {
                what: format!("{}: [install] {k}", path.display()),
                source: io::Error::other("missing"),
            })
    };
    Ok((get("suite")?, get("mirror")?))
}

/// `SOURCE_DATE_EPOCH` if set, else the time of the last commit touching `images`, else 0.
pub fn source_date_epoch(images: &Path) -> u64 {
    if let Some(e) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        return e;
    }
    exec::run_stdout(
        "reading the images' commit time",
        Command::new("git")
            .arg("-C")
            .arg(images)
            .args(["log", "-1", "--format=%ct", "--", "."]),
    )
    .ok()
    .and_then(|s| s.trim().parse().ok())
    .unwrap_or(0)
}

/// The source revision (`git rev-parse HEAD`), or `unknown`.
pub fn revision(images: &Path) -> String {
    exec::run_stdout(
        "reading the source revision",
        Command::new("git")
            .arg("-C")
            .arg(images)
            .args(["rev-parse", "HEAD"]),
    )
    .map(|s| s.trim().to_string())
    .unwrap_or_else(|_| "unknown".to_string())
}

/// The default cache directory: `$XDG_CACHE_HOME/picaboot`, else `~/.cache/picaboot`.
pub fn default_cache() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("picaboot");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/picaboot")
}

fn hex_sha(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// Shell single-quoting.
fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Holds the cache lock for the duration of a build (one heavy build at a time per cache).
struct CacheLock(#[allow(dead_code)] fs::File);

fn lock_cache(cache: &Path) -> Result<CacheLock, BuildError> {
    fs::create_dir_all(cache).map_err(io_ctx(format!("creating {}", cache.display())))?;
    let f = fs::File::create(cache.join("lock")).map_err(io_ctx("creating the cache lock"))?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive).map_err(|e| {
        BuildError::Io {
            what: "locking the cache".into(),
            source: e.into(),
        }
    })?;
    Ok(CacheLock(f))
}

/// Builds `name` and its parents; writes the layout `opts.out` and one archive per image.
pub fn build(
    images: &Images,
    name: &str,
    opts: &BuildOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Built>, BuildError> {
    let chain = images.chain(name)?;
    let _lock = lock_cache(&opts.cache)?;
    // Under the lock nothing else builds in this cache: leftovers of a failed or interrupted
    // build (overlay upper directories can be large) go now.
    let _ = fs::remove_dir_all(opts.cache.join("tmp"));
    for d in ["layers", "blobs/sha256", "tmp", "downloads", "apt-archives"] {
        fs::create_dir_all(opts.cache.join(d)).map_err(io_ctx("creating the cache"))?;
    }
    let mut layers: Vec<LayerRecord> = Vec::new();
    let mut out = Vec::new();
    for img in chain {
        let mut cached = true;
        if img.spec.parent.is_none() {
            let (rec, hit) = base_layer(opts, &img.name, progress)?;
            cached &= hit;
            layers.push(rec);
        }
        let (rec, hit) = image_layer(img, images, &layers, opts, progress)?;
        cached &= hit;
        if let Some(rec) = rec {
            layers.push(rec);
        }
        let t = Instant::now();
        let built = publish(img, images, &layers, opts, cached)?;
        progress(&format!(
            "[{}] {} {} ({:.1} s)",
            img.name,
            if cached { "cached:" } else { "built:" },
            built.manifest.digest,
            t.elapsed().as_secs_f64()
        ));
        out.push(built);
    }
    Ok(out)
}

fn read_record(cache: &Path, key: &str) -> Option<LayerRecord> {
    let p = cache.join("layers").join(key).join("layer.json");
    let rec: LayerRecord = serde_json::from_slice(&fs::read(p).ok()?).ok()?;
    oci::blob_path(cache, &rec.digest.digest)
        .exists()
        .then_some(rec)
}

/// Packs `tree` into the cache's blob store and moves `tmp` (holding `tree`) to its key.
fn commit_layer(
    opts: &BuildOptions,
    tmp: &Path,
    key: &str,
    created_by: String,
) -> Result<LayerRecord, BuildError> {
    let blob_tmp = tmp.join("layer.tar.gz");
    let f = fs::File::create(&blob_tmp).map_err(io_ctx("creating the layer blob"))?;
    let digest =
        layer::pack(&tmp.join("tree"), opts.epoch, f).map_err(io_ctx("packing the layer"))?;
    let blob = oci::blob_path(&opts.cache, &digest.digest);
    fs::rename(&blob_tmp, &blob).map_err(io_ctx("storing the layer blob"))?;
    let rec = LayerRecord {
        key: key.to_string(),
        digest,
        created_by,
    };
    fs::write(
        tmp.join("layer.json"),
        serde_json::to_vec_pretty(&rec).expect("serializable"),
    )
    .map_err(io_ctx("writing layer.json"))?;
    let dst = opts.cache.join("layers").join(key);
    let _ = fs::remove_dir_all(&dst);
    fs::rename(tmp, &dst).map_err(io_ctx("storing the layer tree"))?;
    Ok(rec)
}

fn fresh_tmp(opts: &BuildOptions, key: &str) -> Result<PathBuf, BuildError> {
    let tmp = opts
        .cache
        .join("tmp")
        .join(format!("{key}-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io_ctx("cleaning the build directory"))?;
    }
    fs::create_dir_all(&tmp).map_err(io_ctx("creating the build directory"))?;
    Ok(tmp)
}

/// The debootstrap layer.
fn base_layer(
    opts: &BuildOptions,
    image: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<(LayerRecord, bool), BuildError> {
    let key = hex_sha(&[
        FORMAT.as_bytes(),
        b"base",
        opts.suite.as_bytes(),
        opts.site_mirror.as_bytes(),
        &opts.epoch.to_le_bytes(),
    ]);
    if let Some(rec) = read_record(&opts.cache, &key) {
        return Ok((rec, true));
    }
    let tmp = fresh_tmp(opts, &key)?;
    let tree = tmp.join("tree");
    let t = Instant::now();
    let spin = crate::progress::spinner(&format!(
        "[{image}] base: debootstrap --variant=minbase {} (mirror {})",
        opts.suite, opts.build_mirror
    ));
    exec::run_lines(
        "debootstrap",
        in_build_namespace()
            .args(["debootstrap", "--variant=minbase"])
            .arg(&opts.suite)
            .arg(&tree)
            .arg(&opts.build_mirror),
        &mut |l| spin.line(l),
    )
    .map_err(|source| BuildError::Step {
        image: image.to_string(),
        what: "base root filesystem".into(),
        source: Box::new(source),
    })?;
    finish_base(&tree, opts).map_err(io_ctx("preparing the base root filesystem"))?;
    spin.finish(&format!(
        "[{image}] base: debootstrap done ({:.1} s), packing",
        t.elapsed().as_secs_f64()
    ));
    let t = Instant::now();
    let rec = commit_layer(
        opts,
        &tmp,
        &key,
        format!(
            "picaboot: debootstrap --variant=minbase {} {}",
            opts.suite, opts.site_mirror
        ),
    )?;
    progress(&format!(
        "[{image}] base: layer {} ({:.1} s)",
        rec.digest.digest,
        t.elapsed().as_secs_f64()
    ));
    Ok((rec, false))
}

/// Makes a fresh debootstrap tree machine-independent and ready for build steps.
fn finish_base(tree: &Path, opts: &BuildOptions) -> io::Result<()> {
    let w = |p: &str, text: &str, mode: u32| -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let path = tree.join(p);
        let _ = fs::remove_file(&path);
        fs::write(&path, text)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
    };
    // The images' own sources: the production mirror, not the build machine's.
    w(
        "etc/apt/sources.list",
        &format!("deb {} {} main\n", opts.site_mirror, opts.suite),
        0o644,
    )?;
    // Host files debootstrap copies: replaced (the runtime bind-mounts its own).
    w("etc/resolv.conf", "", 0o644)?;
    w("etc/hostname", "localhost\n", 0o644)?;
    // No service starts inside a build step or an image build by a child.
    w(
        "usr/sbin/policy-rc.d",
        "#!/bin/sh\n# picaboot: no service starts while building images\nexit 101\n",
        0o755,
    )?;
    w(
        "etc/apt/apt.conf.d/90picaboot",
        "APT::Install-Recommends \"false\";\nAPT::Install-Suggests \"false\";\nAcquire::Languages \"none\";\n",
        0o644,
    )?;
    for d in ["var/lib/apt/lists", "var/cache/apt/archives"] {
        let dir = tree.join(d);
        if let Ok(rd) = fs::read_dir(&dir) {
            for e in rd.flatten() {
                if e.file_name() != "partial" {
                    let p = e.path();
                    if p.is_dir() {
                        fs::remove_dir_all(&p)?;
                    } else {
                        fs::remove_file(&p)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Key of an image's own layer: its spec, files, downloads, the layers below, the epoch.
fn image_key(
    img: &Image,
    below: &[LayerRecord],
    opts: &BuildOptions,
) -> Result<String, BuildError> {
    let mut h = Sha256::new();
    h.update(FORMAT);
    h.update(img.name.as_bytes());
    h.update(img.source.text().as_bytes());
    for l in below {
        h.update(l.digest.diff_id.as_bytes());
    }
    for f in &img.spec.files {
        let p = img.dir.join(&f.src);
        let bytes = fs::read(&p).map_err(io_ctx(format!("reading {}", p.display())))?;
        h.update(f.src.as_bytes());
        h.update(Sha256::digest(&bytes));
    }
    h.update(opts.epoch.to_le_bytes());
    Ok(hex::encode(h.finalize()))
}

/// Fetches a pinned download into the cache (verified before it is kept).
fn fetch(
    img: &Image,
    dl: &super::spec::Download,
    opts: &BuildOptions,
) -> Result<PathBuf, BuildError> {
    let dst = opts.cache.join("downloads").join(&dl.sha256);
    if dst.exists() {
        return Ok(dst);
    }
    let tmp = opts
        .cache
        .join("downloads")
        .join(format!("{}.part", dl.sha256));
    let unreachable = |detail: String| BuildError::Unreachable {
        image: img.name.clone(),
        url: dl.url.clone(),
        sha256: dl.sha256.clone(),
        detail,
    };
    let client = crate::http::blocking(None).map_err(|e| unreachable(e.to_string()))?;
    let label = format!(
        "[{}] {}",
        img.name,
        dl.url.rsplit('/').next().unwrap_or(&dl.url)
    );
    let (got, _) = crate::http::download_to_file(
        &client,
        &dl.url,
        &tmp,
        &label,
        crate::limits::IMAGE_DOWNLOAD,
    )
    .map_err(|e| {
        let _ = fs::remove_file(&tmp);
        unreachable(match e {
            crate::http::HttpError::Get { reason, .. } => reason,
            other => other.to_string(),
        })
    })?;
    if got != dl.sha256 {
        let _ = fs::remove_file(&tmp);
        return Err(BuildError::Digest {
            image: img.name.clone(),
            url: dl.url.clone(),
            got,
            want: dl.sha256.clone(),
        });
    }
    fs::rename(&tmp, &dst).map_err(io_ctx("storing a download"))?;
    Ok(dst)
}

/// Mount namespace prelude: overlay, proc, dev, tmpfs, apt cache and sources, resolv.conf.
/// Positional parameters: merged upper work lower archives sources.
const PRELUDE: &str = r#"m=$1
mount -t overlay overlay -o "lowerdir=$4,upperdir=$2,workdir=$3,redirect_dir=off,metacopy=off,index=off" "$m"
mount -t proc proc "$m/proc"
mount --bind /dev "$m/dev"
mount -t tmpfs -o mode=1777 tmpfs "$m/tmp"
mount -t tmpfs tmpfs "$m/var/lib/apt/lists"
mount --bind "$5" "$m/var/cache/apt/archives"
mount --bind "$6" "$m/etc/apt/sources.list"
mount --bind /etc/resolv.conf "$m/etc/resolv.conf"
shift 6
"#;

/// The environment of build steps: the image's inherited env plus fixed build settings.
fn step_env(images: &Images, img: &Image, epoch: u64) -> Vec<String> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.insert("PATH".into(), DEFAULT_PATH.into());
    if let Ok(chain) = images.chain(&img.name) {
        for i in chain {
            env.extend(i.spec.env.clone());
        }
    }
    env.insert("HOME".into(), "/root".into());
    env.insert("DEBIAN_FRONTEND".into(), "noninteractive".into());
    env.insert("SOURCE_DATE_EPOCH".into(), epoch.to_string());
    env.insert("PYTHONHASHSEED".into(), "0".into());
    env.entry("LANG".into()).or_insert_with(|| "C.UTF-8".into());
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// The shell of each build step of `img`, with its label: apt-get install, the files
/// copied in (and the downloads), then the spec's steps, each in the image's root.
fn step_scripts(
    img: &Image,
    images: &Images,
    opts: &BuildOptions,
    fetched: Vec<(PathBuf, String, String)>,
) -> Vec<(String, String)> {
    let s = &img.spec;
    let env = step_env(images, img, opts.epoch);
    let run_in_root = |step: &str| -> String {
        let mut body = String::from("exec chroot \"$m\" /usr/bin/env -i");
        for e in &env {
            body.push(' ');
            body.push_str(&sq(e));
        }
        body.push_str(" /bin/sh -ec ");
        body.push_str(&sq(step));
        body
    };
    let mut steps: Vec<(String, String)> = Vec::new();
    if !s.packages.is_empty() {
        let cmd = format!(
            "apt-get update -q && apt-get install -y -q --no-install-recommends {} && apt-get clean",
            s.packages.join(" ")
        );
        steps.push((
            format!("apt-get install {}", s.packages.join(" ")),
            run_in_root(&cmd),
        ));
    }
    if !s.files.is_empty() || !fetched.is_empty() {
        let mut body = String::new();
        let mut all: Vec<(PathBuf, String, String)> = s
            .files
            .iter()
            .map(|f| (img.dir.join(&f.src), f.dest.clone(), f.mode.clone()))
            .collect();
        all.extend(fetched);
        for (src, dest, mode) in &all {
            body.push_str(&format!(
                "install -D -o 0 -g 0 -m {} {} \"$m\"{}\n",
                sq(mode),
                sq(&src.display().to_string()),
                sq(dest)
            ));
        }
        steps.push((format!("copy {} files", all.len()), body));
    }
    for st in &s.steps {
        steps.push((
            format!("RUN {}", st.lines().next().unwrap_or("")),
            run_in_root(st),
        ));
    }
    steps
}

/// The overlay an image's steps run in.
struct OverlayDirs<'a> {
    merged: &'a Path,
    upper: &'a Path,
    work: &'a Path,
    /// The layers below, `:`-joined.
    lower: &'a str,
    /// The build's sources.list.
    sources: &'a Path,
}

/// Runs each step in the build namespace over the overlay, one spinner line each.
fn run_steps(
    img: &Image,
    steps: &[(String, String)],
    dirs: &OverlayDirs<'_>,
    opts: &BuildOptions,
) -> Result<(), BuildError> {
    let n = steps.len();
    for (i, (label, body)) in steps.iter().enumerate() {
        let t = Instant::now();
        let spin = crate::progress::spinner(&format!("[{}] step {}/{n}: {label}", img.name, i + 1));
        let script = format!("{PRELUDE}{body}\n");
        exec::run_lines(
            &format!("{} step {}/{n}", img.name, i + 1),
            in_build_namespace()
                .args(["/bin/sh", "-ec", &script, "picaboot-step"])
                .arg(dirs.merged)
                .arg(dirs.upper)
                .arg(dirs.work)
                .arg(dirs.lower)
                .arg(opts.cache.join("apt-archives"))
                .arg(dirs.sources),
            &mut |l| spin.line(l),
        )
        .map_err(|source| BuildError::Step {
            image: img.name.clone(),
            what: format!("step {}/{n} ({label})", i + 1),
            source: Box::new(source),
        })?;
        spin.finish(&format!(
            "[{}] step {}/{n} done ({:.1} s)",
            img.name,
            i + 1,
            t.elapsed().as_secs_f64()
        ));
    }
    Ok(())
}

/// The image's own layer (None when it has nothing to add).
fn image_layer(
    img: &Image,
    images: &Images,
    below: &[LayerRecord],
    opts: &BuildOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<(Option<LayerRecord>, bool), BuildError> {
    let s = &img.spec;
    if s.packages.is_empty() && s.files.is_empty() && s.steps.is_empty() && s.downloads.is_empty() {
        return Ok((None, true));
    }
    let key = image_key(img, below, opts)?;
    if let Some(rec) = read_record(&opts.cache, &key) {
        return Ok((Some(rec), true));
    }
    // Downloads first: an unreachable source fails before any work.
    let mut fetched = Vec::new();
    for dl in &s.downloads {
        progress(&format!("[{}] download {}", img.name, dl.url));
        fetched.push((fetch(img, dl, opts)?, dl.dest.clone(), "0644".to_string()));
    }
    let tmp = fresh_tmp(opts, &key)?;
    let (upper, work, merged) = (tmp.join("tree"), tmp.join("work"), tmp.join("merged"));
    for d in [&upper, &work, &merged] {
        fs::create_dir_all(d).map_err(io_ctx("creating overlay directories"))?;
    }
    let sources = tmp.join("sources.list");
    fs::write(
        &sources,
        format!("deb {} {} main\n", opts.build_mirror, opts.suite),
    )
    .map_err(io_ctx("writing build sources"))?;
    let lower = below
        .iter()
        .rev()
        .map(|l| l.tree(&opts.cache).display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let steps = step_scripts(img, images, opts, fetched);
    let dirs = OverlayDirs {
        merged: &merged,
        upper: &upper,
        work: &work,
        lower: &lower,
        sources: &sources,
    };
    run_steps(img, &steps, &dirs, opts)?;
    fs::remove_dir_all(&work).map_err(io_ctx("removing the overlay work directory"))?;
    blank_machine_id(&upper).map_err(io_ctx("blanking machine-id"))?;
    fs::remove_dir_all(&merged).map_err(io_ctx("removing the overlay mount point"))?;
    let t = Instant::now();
    let rec = commit_layer(
        opts,
        &tmp,
        &key,
        format!(
            "picaboot: {} ({} packages, {} files, {} steps)",
            img.name,
            s.packages.len(),
            s.files.len() + s.downloads.len(),
            s.steps.len()
        ),
    )?;
    progress(&format!(
        "[{}] layer {} ({:.1} s)",
        img.name,
        rec.digest.digest,
        t.elapsed().as_secs_f64()
    ));
    Ok((Some(rec), false))
}

/// A machine id generated by a package's maintainer script is random: an image ships an
/// empty one (systemd's convention for images), which the runtime or first boot fills in.
fn blank_machine_id(tree: &Path) -> io::Result<()> {
    for p in ["etc/machine-id", "var/lib/dbus/machine-id"] {
        let path = tree.join(p);
        if fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && m.len() > 0) {
            fs::write(&path, b"")?;
        }
    }
    Ok(())
}

/// The runtime config of `img`: inherited along its chain, overridden by each image.
pub fn run_config(images: &Images, img: &Image, opts: &BuildOptions) -> oci::RunConfig {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.insert("PATH".into(), DEFAULT_PATH.into());
    let mut c = oci::RunConfig::default();
    let mut labels = BTreeMap::new();
    for i in images.chain(&img.name).unwrap_or_default() {
        env.extend(i.spec.env.clone());
        if let Some(cmd) = &i.spec.cmd {
            c.cmd = cmd.clone();
        }
        if let Some(u) = &i.spec.user {
            c.user = u.clone();
        }
        if let Some(w) = &i.spec.workdir {
            c.working_dir = w.clone();
        }
        for p in &i.spec.ports {
            let p = if p.contains('/') {
                p.clone()
            } else {
                format!("{p}/tcp")
            };
            c.exposed_ports.insert(p, BTreeMap::new());
        }
        labels.extend(i.spec.labels.clone());
    }
    labels.insert("org.opencontainers.image.title".into(), img.name.clone());
    labels.insert(
        "org.opencontainers.image.description".into(),
        img.spec.description.clone(),
    );
    labels.insert(
        "org.opencontainers.image.revision".into(),
        opts.revision.clone(),
    );
    labels.insert(
        "org.opencontainers.image.created".into(),
        oci::rfc3339(opts.epoch),
    );
    c.labels = labels;
    c.env = env.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    c
}

/// Writes config + manifest to the cache store, then the layout and the archive to `out`.
fn publish(
    img: &Image,
    images: &Images,
    layers: &[LayerRecord],
    opts: &BuildOptions,
    cached: bool,
) -> Result<Built, BuildError> {
    let created = oci::rfc3339(opts.epoch);
    let config = oci::ImageConfig {
        created: created.clone(),
        architecture: "amd64".into(),
        os: "linux".into(),
        config: run_config(images, img, opts),
        rootfs: oci::RootFs {
            kind: "layers".into(),
            diff_ids: layers.iter().map(|l| l.digest.diff_id.clone()).collect(),
        },
        history: layers
            .iter()
            .map(|l| oci::History {
                created: created.clone(),
                created_by: l.created_by.clone(),
            })
            .collect(),
    };
    let store = &opts.cache;
    let cfg = oci::write_blob(
        store,
        oci::CONFIG,
        &serde_json::to_vec(&config).expect("serializable"),
    )
    .map_err(io_ctx("writing the config"))?;
    let manifest = oci::Manifest {
        schema_version: 2,
        media_type: oci::MANIFEST.into(),
        config: cfg.clone(),
        layers: layers
            .iter()
            .map(|l| Descriptor {
                media_type: oci::LAYER_GZIP.into(),
                digest: l.digest.digest.clone(),
                size: l.digest.size,
                annotations: BTreeMap::new(),
            })
            .collect(),
    };
    let man = oci::write_blob(
        store,
        oci::MANIFEST,
        &serde_json::to_vec(&manifest).expect("serializable"),
    )
    .map_err(io_ctx("writing the manifest"))?;
    let mut blobs: Vec<String> = layers.iter().map(|l| l.digest.digest.clone()).collect();
    blobs.push(cfg.digest.clone());
    blobs.push(man.digest.clone());
    let out = &opts.out;
    fs::create_dir_all(out).map_err(io_ctx(format!("creating {}", out.display())))?;
    for b in &blobs {
        oci::import_blob(store, out, b).map_err(io_ctx(format!("copying blob {b}")))?;
    }
    oci::add_to_index(out, &img.name, &man).map_err(io_ctx("writing index.json"))?;
    let archive = out.join(format!("{}.oci.tar", img.name));
    let stamp = out.join(format!(".{}.oci.tar.manifest", img.name));
    let stamp_text = format!("{} {}", oci::ARCHIVE_FORMAT, man.digest);
    let fresh =
        archive.exists() && fs::read_to_string(&stamp).ok().as_deref() == Some(stamp_text.as_str());
    if !fresh {
        oci::write_archive(store, &archive, &img.name, &man, &blobs, opts.epoch)
            .map_err(io_ctx("writing the oci-archive"))?;
        fs::write(&stamp, &stamp_text).map_err(io_ctx("writing the archive stamp"))?;
    }
    Ok(Built {
        name: img.name.clone(),
        manifest: man,
        archive,
        cached,
    })
}

impl crate::exit_class::ExitClass for BuildError {
    fn exit_class(&self) -> crate::exit_class::Class {
        use crate::exit_class::Class;
        match self {
            BuildError::Spec(s) => s.exit_class(),
            _ => Class::Env,
        }
    }
}
