//! `picaboot image dockerfile`: a Dockerfile and its build context per image, for people who
//! build with Docker. Same order as `image build`: packages, then files (one `COPY rootfs/ /`),
//! then downloads and steps in one `RUN`.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::Serialize;

use super::spec::Image;

#[derive(Serialize)]
struct DownloadCtx {
    url: String,
    sha256: String,
    dest: String,
}

#[derive(Serialize)]
struct Ctx {
    name: String,
    description: String,
    parent: Option<String>,
    suite: String,
    env: Vec<String>,
    packages: Vec<String>,
    has_files: bool,
    downloads: Vec<DownloadCtx>,
    steps: Vec<String>,
    ports: Vec<String>,
    labels: Vec<String>,
    workdir: Option<String>,
    user: Option<String>,
    cmd: Option<String>,
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// A step as it goes into the `RUN`: its lines (each but the last ends in `\`, checked at
/// load time) indented.
fn step_line(step: &str) -> String {
    step.trim()
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n      ")
}

/// Renders the Dockerfile of `img` (suite used when it has no parent).
pub fn render(img: &Image, suite: &str) -> Result<String, tera::Error> {
    let s = &img.spec;
    let ctx = Ctx {
        name: img.name.clone(),
        description: s.description.clone(),
        parent: s.parent.clone(),
        suite: suite.to_string(),
        env: s
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", quoted(v)))
            .collect(),
        packages: s.packages.clone(),
        has_files: !s.files.is_empty(),
        downloads: s
            .downloads
            .iter()
            .map(|d| DownloadCtx {
                url: d.url.clone(),
                sha256: d.sha256.clone(),
                dest: d.dest.clone(),
            })
            .collect(),
        steps: s.steps.iter().map(|x| step_line(x)).collect(),
        ports: s
            .ports
            .iter()
            .map(|p| {
                if p.contains('/') {
                    p.clone()
                } else {
                    format!("{p}/tcp")
                }
            })
            .collect(),
        labels: s
            .labels
            .iter()
            .map(|(k, v)| format!("{}={}", quoted(k), quoted(v)))
            .collect(),
        workdir: s.workdir.clone(),
        user: s.user.clone(),
        cmd: s
            .cmd
            .as_ref()
            .map(|c| serde_json::to_string(c).expect("serializable")),
    };
    crate::render::templates::render("Dockerfile", &ctx)
}

/// Writes `dir/Dockerfile` and `dir/rootfs/…` (the image's files at their destinations, with
/// their modes).
pub fn write_context(img: &Image, suite: &str, dir: &Path) -> io::Result<()> {
    let text = render(img, suite).map_err(|e| io::Error::other(format!("{e:?}")))?;
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    fs::create_dir_all(dir)?;
    fs::write(dir.join("Dockerfile"), text)?;
    for f in &img.spec.files {
        let dst = dir.join("rootfs").join(f.dest.trim_start_matches('/'));
        fs::create_dir_all(dst.parent().expect("a file has a parent"))?;
        fs::copy(img.dir.join(&f.src), &dst)?;
        fs::set_permissions(&dst, fs::Permissions::from_mode(Image::mode_of(f)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn every_repository_image_renders() {
        let images =
            crate::image::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("images")).unwrap();
        for img in images.by_name.values() {
            let d = super::render(img, "trixie").unwrap_or_else(|e| panic!("{}: {e:?}", img.name));
            match &img.spec.parent {
                Some(p) => assert!(d.contains(&format!("FROM ${{REGISTRY}}/{p}:latest")), "{d}"),
                None => assert!(d.contains("FROM debian:trixie"), "{d}"),
            }
            assert_eq!(
                d.contains("COPY rootfs/ /"),
                !img.spec.files.is_empty(),
                "{d}"
            );
            for dl in &img.spec.downloads {
                assert!(
                    d.contains(&format!("{}  {}", dl.sha256, dl.dest)),
                    "download verified: {d}"
                );
            }
        }
    }

    #[test]
    fn context_keeps_file_modes() {
        use std::os::unix::fs::PermissionsExt;
        let images =
            crate::image::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("images")).unwrap();
        let t = tempfile::tempdir().unwrap();
        super::write_context(&images.by_name["tx-apache"], "trixie", t.path()).unwrap();
        let m =
            std::fs::metadata(t.path().join("rootfs/usr/local/bin/apache2-foreground")).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o755);
    }
}
