//! Debian binary packages: an `ar` archive holding `debian-binary`, `control.tar.*` and
//! `data.tar.*`. [`visit_data`] streams the data member's tar entries (xz, zstd, gzip or
//! uncompressed) to a callback without unpacking anything to disk.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::ArchiveError;

/// What the visitor wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    /// Keep reading entries.
    Continue,
    /// Stop: everything needed was seen.
    Stop,
}

/// One entry of a package's data archive, as passed to the visitor.
pub struct DataEntry<'a> {
    /// Path without the leading `./` (e.g. `usr/lib/modules/...`).
    pub path: String,
    /// The tar header (type, mode, link name, size).
    pub header: tar::Header,
    /// The content (regular files).
    pub reader: &'a mut dyn Read,
}

/// Streams every entry of the `data.tar.*` member of the `.deb` at `deb` to `visit`.
pub fn visit_data<F>(deb: &Path, mut visit: F) -> Result<(), ArchiveError>
where
    F: FnMut(DataEntry<'_>) -> Result<Visit, ArchiveError>,
{
    let name = deb.display().to_string();
    let file = File::open(deb).map_err(ArchiveError::io(&name))?;
    let mut ar = super::ar::ArReader::new(BufReader::with_capacity(1 << 20, file))
        .map_err(|e| ArchiveError::malformed(&name, e.to_string()))?;
    while let Some(member) = ar
        .next_member()
        .map_err(|e| ArchiveError::malformed(&name, e.to_string()))?
    {
        let Some(ext) = member.name.strip_prefix("data.tar") else {
            continue;
        };
        let ext = ext.to_string();
        let reader: Box<dyn Read + '_> = match ext.as_str() {
            ".xz" => Box::new(liblzma::read::XzDecoder::new_parallel(member)),
            ".zst" => {
                Box::new(zstd::stream::read::Decoder::new(member).map_err(ArchiveError::io(&name))?)
            }
            ".gz" => Box::new(flate2::read::GzDecoder::new(member)),
            "" => Box::new(member),
            other => {
                return Err(ArchiveError::malformed(
                    &name,
                    format!("unsupported data member compression `data.tar{other}`"),
                ))
            }
        };
        let mut tar = tar::Archive::new(reader);
        let entries = tar.entries().map_err(ArchiveError::io(&name))?;
        for entry in entries {
            let mut entry = entry.map_err(ArchiveError::io(&name))?;
            let path = entry.path_bytes().iter().copied().collect::<Vec<u8>>();
            let path = String::from_utf8_lossy(&path);
            let path = path
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_string();
            let header = entry.header().clone();
            let flow = visit(DataEntry {
                path,
                header,
                reader: &mut entry,
            })?;
            if flow == Visit::Stop {
                return Ok(());
            }
        }
        return Ok(());
    }
    Err(ArchiveError::malformed(
        &name,
        "no data.tar member: not a Debian package",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_a_deb_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.deb");
        std::fs::write(&p, "!<arch>\n").unwrap();
        let e = visit_data(&p, |_| Ok(Visit::Continue)).unwrap_err();
        assert!(e.to_string().contains("not a Debian package"), "{e}");
    }

    /// The fuzzer's crash input (a GNU long-name member, no name table) is refused with an
    /// error: it has no `data.tar` member a `.deb` would have.
    #[test]
    fn the_fuzzer_s_long_name_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("crash.deb");
        std::fs::write(
            &p,
            include_bytes!(
                "../../fuzz/crashes/deb_read/crash-3eb749b5aa72ff66dba7e68736d1c9468ad1fd56"
            ),
        )
        .unwrap();
        let e = visit_data(&p, |_| Ok(Visit::Continue)).unwrap_err();
        assert!(
            e.to_string().starts_with(&format!("{}: ", p.display())),
            "{e}"
        );
    }
}

#[cfg(test)]
mod oracle_tests {
    use super::*;

    /// Builds a real package with `dpkg-deb` and reads it back, for each compressor.
    #[test]
    fn reads_packages_built_by_dpkg_deb() {
        for z in ["xz", "gzip", "none"] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("pkg");
            std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
            std::fs::create_dir_all(root.join("usr/share/x")).unwrap();
            std::fs::write(
                root.join("DEBIAN/control"),
                "Package: x\nVersion: 1\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n",
            )
            .unwrap();
            std::fs::write(root.join("usr/share/x/hello"), "hello\n").unwrap();
            let deb = dir.path().join("x.deb");
            crate::exec::run(
                "build a test package",
                std::process::Command::new("dpkg-deb")
                    .args(["--root-owner-group", &format!("-Z{z}"), "-b"])
                    .arg(&root)
                    .arg(&deb),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            let mut found = None;
            visit_data(&deb, |e| {
                if e.path == "usr/share/x/hello" {
                    let mut s = String::new();
                    e.reader.read_to_string(&mut s).unwrap();
                    found = Some(s);
                    return Ok(Visit::Stop);
                }
                Ok(Visit::Continue)
            })
            .unwrap();
            assert_eq!(found.as_deref(), Some("hello\n"), "{z}");
        }
    }
}
