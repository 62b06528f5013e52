//! Image specs: `images/<name>/image.toml` plus the files it names, loaded and checked with
//! `file:line: field: reason` diagnostics like the profiles.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::profile::{Diagnostic, Diagnostics, SourceFile};

/// One `image.toml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ImageSpec {
    /// One line saying what the image is for.
    pub description: String,
    /// The image this one is built on; none means a `debootstrap --variant=minbase` root
    /// filesystem of the site's suite.
    #[serde(default)]
    pub parent: Option<String>,
    /// Debian packages installed (with `--no-install-recommends`) before the files and steps.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Release downloads, verified by sha256, placed before the steps run.
    #[serde(default)]
    pub downloads: Vec<Download>,
    /// Files of the image directory copied into the image.
    #[serde(default)]
    pub files: Vec<FileSpec>,
    /// Shell commands run in order inside the image root (like Dockerfile RUN, in one layer).
    #[serde(default)]
    pub steps: Vec<String>,
    /// Environment variables of the image (inherited and overridden by children).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Default command (inherited when absent).
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// User the command runs as (inherited when absent).
    #[serde(default)]
    pub user: Option<String>,
    /// Working directory (inherited when absent).
    #[serde(default)]
    pub workdir: Option<String>,
    /// Exposed ports, `80/tcp` or `53/udp` (added to the parent's).
    #[serde(default)]
    pub ports: Vec<String>,
    /// Labels (added to the parent's).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// How the tests prove a running container of this image works.
    pub check: Check,
}

/// A release download pinned by its digest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Download {
    /// Where it comes from.
    pub url: String,
    /// Its sha256, lowercase hex.
    pub sha256: String,
    /// Where it lands in the image (absolute path of the file).
    pub dest: String,
}

/// A file copied from the image directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FileSpec {
    /// Path relative to the image directory.
    pub src: String,
    /// Absolute path in the image.
    pub dest: String,
    /// Octal mode, e.g. `"0644"`.
    #[serde(default = "default_mode")]
    pub mode: String,
}

fn default_mode() -> String {
    "0644".to_string()
}

/// A check run inside a running container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Check {
    /// Shell command run with `sh -c` inside the container; exit 0 means the image works.
    pub run: String,
    /// Seconds to retry the command before declaring failure.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// Open-files limit the container needs (apache wants 8192).
    #[serde(default = "default_nofile")]
    pub nofile: u64,
}

fn default_timeout() -> u64 {
    60
}

fn default_nofile() -> u64 {
    1024
}

/// A loaded image: its name, directory, spec and source text.
#[derive(Debug, Clone)]
pub struct Image {
    /// Directory name under `images/`.
    pub name: String,
    /// `images/<name>`.
    pub dir: PathBuf,
    /// The parsed spec.
    pub spec: ImageSpec,
    /// The text of `image.toml`, for diagnostics and the cache key.
    pub source: SourceFile,
}

impl Image {
    /// The file mode of a [`FileSpec`] (validated at load time).
    pub fn mode_of(f: &FileSpec) -> u32 {
        u32::from_str_radix(&f.mode, 8).unwrap_or(0o644)
    }
}

/// Every image spec of an `images/` directory, by name.
#[derive(Debug, Clone, Default)]
pub struct Images {
    /// Images by name.
    pub by_name: BTreeMap<String, Image>,
}

/// Why image specs could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The directory could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Specs were read and are invalid.
    #[error("{0}")]
    Invalid(Diagnostics),
    /// No image of that name.
    #[error("no image named `{0}` (see `picaboot image list`)")]
    Unknown(String),
}

impl Images {
    /// The chain from the root image to `name`, root first.
    pub fn chain(&self, name: &str) -> Result<Vec<&Image>, SpecError> {
        let mut out = Vec::new();
        let mut cur = Some(name.to_string());
        while let Some(n) = cur {
            let img = self
                .by_name
                .get(&n)
                .ok_or_else(|| SpecError::Unknown(n.clone()))?;
            if out.iter().any(|i: &&Image| i.name == n) {
                break; // cycles are rejected at load time
            }
            out.push(img);
            cur = img.spec.parent.clone();
        }
        out.reverse();
        Ok(out)
    }

    /// Every image in dependency order (parents before children, then by name).
    pub fn ordered(&self) -> Vec<&Image> {
        let mut out: Vec<&Image> = Vec::new();
        for name in self.by_name.keys() {
            if let Ok(chain) = self.chain(name) {
                for i in chain {
                    if !out.iter().any(|o| o.name == i.name) {
                        out.push(i);
                    }
                }
            }
        }
        out
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SpecError + '_ {
    move |source| SpecError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Loads and validates every `images/*/image.toml` under `dir`.
pub fn load(dir: &Path) -> Result<Images, SpecError> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let e = e.map_err(io_err(dir))?;
        if e.path().join("image.toml").is_file() {
            names.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    let mut diags = Diagnostics::default();
    let mut images = Images::default();
    for name in names {
        let idir = dir.join(&name);
        let path = idir.join("image.toml");
        let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
        let source = SourceFile::new(&path, text);
        match toml::from_str::<ImageSpec>(source.text()) {
            Ok(spec) if crate::profile::text::comment_text(&spec.description).is_err() => {
                // The description lands in a Dockerfile comment: one short line.
                let why = crate::profile::text::comment_text(&spec.description).unwrap_err();
                diags.push(source.diag("description", why));
            }
            Ok(spec) => {
                images.by_name.insert(
                    name.clone(),
                    Image {
                        name,
                        dir: idir,
                        spec,
                        source,
                    },
                );
            }
            Err(e) => {
                let offset = e.span().map_or(0, |s| s.start);
                let msg = e.message().trim().to_string();
                let field = source
                    .path_at(offset)
                    .or_else(|| msg.split('`').nth(1).map(str::to_string))
                    .unwrap_or_else(|| "(file)".to_string());
                diags.push(Diagnostic {
                    file: path.clone(),
                    line: source.line_of_offset(offset),
                    field,
                    reason: msg,
                });
            }
        }
    }
    for img in images.by_name.values() {
        verify_image(img, &images, &mut diags);
    }
    if diags.is_empty() {
        Ok(images)
    } else {
        Err(SpecError::Invalid(diags.finish()))
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_'))
}

fn valid_package(s: &str) -> bool {
    s.len() >= 2
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '+'))
}

/// True when `rel`, taken from an image directory, stays inside the images directory (a
/// file may be shared with a sibling image as `../other/file`).
fn stays_inside(rel: &str) -> bool {
    let mut depth = 1i32;
    for c in rel.split('/') {
        match c {
            ".." => depth -= 1,
            "" | "." => {}
            _ => depth += 1,
        }
        if depth < 1 && c != ".." || depth < 0 {
            return false;
        }
    }
    depth >= 2
}

fn valid_abs(s: &str) -> bool {
    s.starts_with('/') && !s.split('/').any(|p| p == "..") && !s.contains('\0')
}

/// The image's name, and a parent that exists and does not loop back.
fn verify_lineage(img: &Image, all: &Images, d: &mut Diagnostics) {
    let s = &img.spec;
    let src = &img.source;
    if !valid_name(&img.name) {
        d.push(src.diag(
            "(file)",
            format!(
                "image name `{}` must be lowercase letters, digits, `-`, `.`, `_`",
                img.name
            ),
        ));
    }
    if let Some(p) = &s.parent {
        if !all.by_name.contains_key(p) {
            d.push(src.diag(
                "parent",
                format!(
                    "no image named `{p}` under {}",
                    img.dir.parent().unwrap_or(Path::new(".")).display()
                ),
            ));
        } else {
            // cycle check
            let mut seen = vec![img.name.clone()];
            let mut cur = Some(p.clone());
            while let Some(n) = cur {
                if seen.contains(&n) {
                    d.push(src.diag("parent", format!("parent chain loops back to `{n}`")));
                    break;
                }
                seen.push(n.clone());
                cur = all.by_name.get(&n).and_then(|i| i.spec.parent.clone());
            }
        }
    }
}

/// Package names, and each file copied in: a source inside the images directory, an
/// absolute destination, an octal mode.
fn verify_contents(img: &Image, d: &mut Diagnostics) {
    let s = &img.spec;
    let src = &img.source;
    for (i, p) in s.packages.iter().enumerate() {
        if !valid_package(p) {
            d.push(src.diag(
                format!("packages[{i}]"),
                format!("`{p}` is not a Debian package name"),
            ));
        }
    }
    for (i, f) in s.files.iter().enumerate() {
        let p = img.dir.join(&f.src);
        if f.src.starts_with('/') || !stays_inside(&f.src) {
            d.push(src.diag(
                format!("files[{i}].src"),
                "must be a path inside the images directory",
            ));
        } else if !p.is_file() {
            d.push(src.diag(
                format!("files[{i}].src"),
                format!("{} does not exist", p.display()),
            ));
        }
        if !valid_abs(&f.dest) || f.dest.ends_with('/') {
            d.push(src.diag(
                format!("files[{i}].dest"),
                "must be an absolute file path without `..`",
            ));
        }
        match u32::from_str_radix(&f.mode, 8) {
            Ok(m) if m <= 0o7777 => {}
            _ => d.push(src.diag(
                format!("files[{i}].mode"),
                format!("`{}` is not an octal mode", f.mode),
            )),
        }
    }
}

/// Downloads (http(s), pinned by sha256), environment names, published ports.
fn verify_fetches_and_runtime(img: &Image, d: &mut Diagnostics) {
    let s = &img.spec;
    let src = &img.source;
    for (i, dl) in s.downloads.iter().enumerate() {
        if !(dl.url.starts_with("https://") || dl.url.starts_with("http://")) {
            d.push(src.diag(format!("downloads[{i}].url"), "must be an http(s) URL"));
        }
        if dl.sha256.len() != 64
            || !dl
                .sha256
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        {
            d.push(src.diag(
                format!("downloads[{i}].sha256"),
                "must be 64 lowercase hex digits",
            ));
        }
        if !valid_abs(&dl.dest) {
            d.push(src.diag(
                format!("downloads[{i}].dest"),
                "must be an absolute path without `..`",
            ));
        }
    }
    for k in s.env.keys() {
        if k.is_empty()
            || k.contains('=')
            || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            d.push(src.diag(
                format!("env.{k}"),
                "an environment name is letters, digits and `_`",
            ));
        }
    }
    for (i, p) in s.ports.iter().enumerate() {
        let (num, proto) = p.split_once('/').unwrap_or((p.as_str(), "tcp"));
        if num.parse::<u16>().map_or(true, |n| n == 0) || !matches!(proto, "tcp" | "udp") {
            d.push(src.diag(
                format!("ports[{i}]"),
                format!("`{p}` is not PORT/tcp or PORT/udp"),
            ));
        }
    }
}

/// The working directory, the command, the build steps (one command each) and the check.
fn verify_run(img: &Image, d: &mut Diagnostics) {
    let s = &img.spec;
    let src = &img.source;
    if let Some(w) = &s.workdir {
        if !valid_abs(w) {
            d.push(src.diag("workdir", "must be an absolute path"));
        }
    }
    if let Some(c) = &s.cmd {
        if c.is_empty() {
            d.push(src.diag("cmd", "must name a program"));
        }
    }
    for (i, st) in s.steps.iter().enumerate() {
        let lines: Vec<&str> = st.trim().lines().collect();
        if lines.is_empty() {
            d.push(src.diag(format!("steps[{i}]"), "must be a shell command"));
        } else if lines[..lines.len() - 1]
            .iter()
            .any(|l| !l.trim_end().ends_with('\\'))
        {
            d.push(src.diag(
                format!("steps[{i}]"),
                "every line but the last must end in `\\` (one command per step; chain with &&)",
            ));
        }
    }
    if s.check.run.trim().is_empty() {
        d.push(src.diag("check.run", "must be a shell command"));
    }
    if s.check.timeout == 0 {
        d.push(src.diag("check.timeout", "must be at least 1 second"));
    }
}

/// Checks one image against the others.
fn verify_image(img: &Image, all: &Images, d: &mut Diagnostics) {
    verify_lineage(img, all, d);
    verify_contents(img, d);
    verify_fetches_and_runtime(img, d);
    verify_run(img, d);
}

impl crate::exit_class::ExitClass for SpecError {
    fn exit_class(&self) -> crate::exit_class::Class {
        use crate::exit_class::Class;
        match self {
            SpecError::Invalid(_) | SpecError::Unknown(_) | SpecError::Io { .. } => Class::User,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, toml: &str) {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        std::fs::write(dir.join(name).join("image.toml"), toml).unwrap();
    }

    #[test]
    fn repository_images_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("images");
        let imgs = load(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(imgs.by_name.contains_key("tx-apache"));
        let chain: Vec<_> = imgs
            .chain("tx-apache")
            .unwrap()
            .iter()
            .map(|i| i.name.clone())
            .collect();
        assert_eq!(chain, ["tx-debian", "tx-apache"]);
    }

    #[test]
    fn errors_point_at_lines() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "a", "description = \"a\"\nparent = \"nope\"\nports = [\"80/sctp\"]\n[check]\nrun = \"true\"\n");
        write(
            t.path(),
            "b",
            "description = \"b\"\nfoo = 1\n[check]\nrun = \"true\"\n",
        );
        let e = load(t.path()).unwrap_err();
        let SpecError::Invalid(d) = e else {
            panic!("{e}")
        };
        let text = d.to_string().replace(&t.path().display().to_string(), "D");
        assert_eq!(
            text,
            "D/a/image.toml:2: parent: no image named `nope` under D\n\
             D/a/image.toml:3: ports[0]: `80/sctp` is not PORT/tcp or PORT/udp\n\
             D/b/image.toml:2: foo: unknown field `foo`, expected one of `description`, `parent`, `packages`, `downloads`, `files`, `steps`, `env`, `cmd`, `user`, `workdir`, `ports`, `labels`, `check`"
        );
    }

    #[test]
    fn parent_cycle_is_rejected() {
        let t = tempfile::tempdir().unwrap();
        write(
            t.path(),
            "a",
            "description = \"a\"\nparent = \"b\"\n[check]\nrun = \"true\"\n",
        );
        write(
            t.path(),
            "b",
            "description = \"b\"\nparent = \"a\"\n[check]\nrun = \"true\"\n",
        );
        let e = load(t.path()).unwrap_err().to_string();
        assert!(e.contains("loops back"), "{e}");
    }
}
