//! Debian archive indexes: the signed `Release` text (from `InRelease`) and `Packages`
//! stanzas (RFC 822 style, one paragraph per package).

use std::collections::BTreeMap;

/// One file listed in a `Release` file's `SHA256:` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// sha256, lower-case hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// A verified `Release` file.
#[derive(Debug, Clone)]
pub struct Release {
    /// The suite as requested (codename).
    pub suite: String,
    /// Top-level fields (`Suite`, `Codename`, `Date`, ...), multi-line fields excluded.
    pub fields: BTreeMap<String, String>,
    /// The `SHA256:` list: path relative to `dists/SUITE/` -> hash and size.
    pub sha256: BTreeMap<String, Listed>,
}

impl Release {
    /// Parses the (already verified) text of a Release file.
    pub fn parse(suite: &str, text: &str) -> Self {
        let p = super::deb822::Paragraph::parse(text);
        let mut fields = BTreeMap::new();
        let mut sha256 = BTreeMap::new();
        for f in &p.fields {
            if f.name == "SHA256" {
                for line in &f.lines {
                    let parts: Vec<&str> = line.split_whitespace().collect();
                    if let [hash, size, path] = parts[..] {
                        if let Ok(size) = size.parse() {
                            sha256.insert(
                                path.to_string(),
                                Listed {
                                    sha256: hash.to_ascii_lowercase(),
                                    size,
                                },
                            );
                        }
                    }
                }
            } else if !f.value.is_empty() {
                fields.insert(f.name.to_string(), f.value.to_string());
            }
        }
        Self {
            suite: suite.to_string(),
            fields,
            sha256,
        }
    }
}

/// One package paragraph of a `Packages` index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// `Package:`.
    pub name: String,
    /// `Version:`.
    pub version: String,
    /// `Filename:` (relative to the mirror root, `pool/...`).
    pub filename: String,
    /// `Size:`.
    pub size: u64,
    /// `SHA256:`.
    pub sha256: String,
    /// Every single-line field of the paragraph.
    pub fields: BTreeMap<String, String>,
}

/// A verified `Packages` index held in memory, searched on demand.
#[derive(Debug, Clone)]
pub struct Packages {
    /// Where it came from (for messages), e.g. `dists/trixie/main/binary-amd64/Packages`.
    pub origin: String,
    text: String,
    /// Paragraph start offsets by package name (built in one pass).
    starts: std::collections::HashMap<String, Vec<usize>>,
}

impl Packages {
    /// Wraps the text of a verified index.
    pub fn new(origin: impl Into<String>, text: String) -> Self {
        let mut starts: std::collections::HashMap<String, Vec<usize>> =
            std::collections::HashMap::new();
        const KEY: &str = "Package: ";
        let mut pos = if text.starts_with(KEY) {
            Some(0)
        } else {
            text.find("\nPackage: ").map(|i| i + 1)
        };
        while let Some(start) = pos {
            let name_start = start + KEY.len();
            let name_end = text[name_start..]
                .find('\n')
                .map_or(text.len(), |e| name_start + e);
            starts
                .entry(text[name_start..name_end].to_string())
                .or_default()
                .push(start);
            pos = text[name_end..]
                .find("\nPackage: ")
                .map(|i| name_end + i + 1);
        }
        Self {
            origin: origin.into(),
            text,
            starts,
        }
    }

    /// Every paragraph whose `Package:` is `name`, in index order.
    pub fn all(&self, name: &str) -> Vec<Package> {
        let mut out = Vec::new();
        for &start in self.starts.get(name).map(Vec::as_slice).unwrap_or_default() {
            let end = self.text[start..]
                .find("\n\n")
                .map(|e| start + e)
                .unwrap_or(self.text.len());
            // A paragraph is the package it was indexed as, or nothing (found by the
            // `debian_index` fuzz target: a second `Package:` line in one paragraph).
            if let Some(p) = parse_paragraph(&self.text[start..end]).filter(|p| p.name == name) {
                out.push(p);
            }
        }
        out
    }

    /// The first paragraph for `name`.
    pub fn get(&self, name: &str) -> Option<Package> {
        self.all(name).into_iter().next()
    }
}

/// Seconds since the epoch of a Release date (`Sat, 21 Nov 2026 09:18:10 UTC`); `None` when
/// it cannot be read (the caller then refuses).
pub use crate::date::parse_rfc2822;

fn parse_paragraph(text: &str) -> Option<Package> {
    let p = super::deb822::Paragraph::parse(text);
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    for f in &p.fields {
        // A field given twice makes the paragraph malformed, not "the last one wins".
        if fields
            .insert(f.name.to_string(), f.value.to_string())
            .is_some()
        {
            return None;
        }
    }
    Some(Package {
        name: fields.get("Package")?.clone(),
        version: fields.get("Version")?.clone(),
        filename: fields.get("Filename")?.clone(),
        size: fields.get("Size")?.parse().ok()?,
        sha256: fields.get("SHA256")?.to_ascii_lowercase(),
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `debian_index` fuzz target: a `Package:` line whose paragraph lacks
    /// `Filename`/`Size`/`SHA256` is indexed by name but is not a package (never a half one).
    #[test]
    fn an_incomplete_paragraph_is_not_a_package() {
        let text = "Package: a\nVersion: 1\nFilename: pool/a.deb\nSize: 1\nSHA256: 00\n\n\
                    Package: busybox-udeb\nVersion: 1:1.36.0-1\n";
        let p = Packages::new("t", text.to_string());
        assert!(p.all("busybox-udeb").is_empty());
        assert_eq!(p.get("busybox-udeb"), None);
        assert_eq!(p.get("a").unwrap().filename, "pool/a.deb");
    }

    /// Found by the `debian_index` fuzz target: asking for one package returned another's
    /// paragraph (a second `Package:` line, no blank line between them).
    #[test]
    fn a_paragraph_with_two_package_lines_is_neither_package() {
        let text = "Package: debian-installer-13-netboot-amd64\nVersion: 1\nFilename: pool/d.deb\n\
                    Size: 1\nSHA256: 00\nPackage: busybox-udeb\nVersion: 2\n";
        let p = Packages::new("t", text.to_string());
        assert_eq!(p.get("debian-installer-13-netboot-amd64"), None);
        assert_eq!(p.get("busybox-udeb"), None);
    }

    #[test]
    fn release_dates() {
        assert_eq!(parse_rfc2822("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
        assert_eq!(
            parse_rfc2822("Sat, 21 Nov 2026 09:18:10 UTC"),
            Some(1_795_252_690)
        );
        assert_eq!(
            parse_rfc2822("Tue, 29 Feb 2000 12:00:00 UTC"),
            Some(951_825_600)
        );
        assert_eq!(parse_rfc2822("garbage"), None);
    }

    #[test]
    fn release_and_packages_parse() {
        let r = Release::parse(
            "trixie",
            "Origin: Debian\nCodename: trixie\nMD5Sum:\n 00 1 x\nSHA256:\n ABCD 12 main/binary-amd64/Packages\n 0123 3 main/binary-amd64/Packages.xz\nAcquire-By-Hash: yes\n",
        );
        assert_eq!(r.fields["Codename"], "trixie");
        assert_eq!(r.sha256["main/binary-amd64/Packages"].sha256, "abcd");
        assert_eq!(r.sha256["main/binary-amd64/Packages.xz"].size, 3);
        assert_eq!(r.sha256.len(), 2);

        let p = Packages::new(
            "t",
            "Package: a-b\nVersion: 1\nFilename: pool/a\nSize: 3\nSHA256: aa\n\nPackage: a\nVersion: 2\nDescription: x\n more\nFilename: pool/b\nSize: 4\nSHA256: BB\n"
                .to_string(),
        );
        let a = p.get("a").unwrap();
        assert_eq!(
            (a.version.as_str(), a.size, a.sha256.as_str()),
            ("2", 4, "bb")
        );
        assert!(p.get("b").is_none());
        assert_eq!(p.get("a-b").unwrap().filename, "pool/a");
    }
}
