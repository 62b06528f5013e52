//! This machine's Debian mirror, read from apt's sources at run time (deb822
//! `/etc/apt/sources.list.d/*.sources` `URIs:`, else one-line `/etc/apt/sources.list`), for
//! development and tests. Production uses the host profile's mirror.

use std::path::Path;

use super::DebianError;

/// The first Debian (non-security) mirror URL in apt's configuration under `root` (`/`).
pub fn system_mirror_in(root: &Path) -> Result<String, DebianError> {
    let dir = root.join("etc/apt/sources.list.d");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for f in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "sources"))
    {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for stanza in super::deb822::paragraphs(&text) {
            let field = |name: &str| stanza.get(name).map(str::to_string);
            let types = field("Types").unwrap_or_default();
            let suites = field("Suites").unwrap_or_default();
            if !types.split_whitespace().any(|t| t == "deb") || suites.contains("security") {
                continue;
            }
            if let Some(uri) =
                field("URIs").and_then(|u| u.split_whitespace().next().map(str::to_string))
            {
                if !uri.contains("security") {
                    return Ok(uri);
                }
            }
        }
    }
    let list = root.join("etc/apt/sources.list");
    let text = std::fs::read_to_string(&list).unwrap_or_default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("deb") {
            continue;
        }
        let mut w = words.next();
        if w.is_some_and(|x| x.starts_with('[')) {
            while let Some(x) = w {
                if x.ends_with(']') {
                    break;
                }
                w = words.next();
            }
            w = words.next();
        }
        if let Some(uri) = w.filter(|u| !u.contains("security")) {
            return Ok(uri.to_string());
        }
    }
    Err(DebianError::NoMirror(format!(
        "no `deb` source in {}/*.sources or {}",
        dir.display(),
        list.display()
    )))
}

/// This machine's Debian security mirror: the first apt source whose URI or suite names
/// `security` (deb822 or one-line), else the main mirror's `debian` path with
/// `debian-security` in its place.
pub fn system_security_mirror() -> Result<String, DebianError> {
    let mut texts = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut files: Vec<_> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        for f in files {
            texts.push(std::fs::read_to_string(f).unwrap_or_default());
        }
    }
    texts.push(std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default());
    for text in &texts {
        for line in text.lines() {
            let l = line.trim();
            let uri = if let Some(v) = l.strip_prefix("URIs:") {
                v.split_whitespace().next()
            } else if l.starts_with("deb ") {
                l.split_whitespace().find(|w| w.starts_with("http"))
            } else {
                None
            };
            if let Some(u) = uri.filter(|u| u.contains("security")) {
                return Ok(u.to_string());
            }
        }
    }
    let main = system_mirror()?;
    Ok(match main.strip_suffix("/debian") {
        Some(base) => format!("{base}/debian-security"),
        None => format!("{}-security", main.trim_end_matches('/')),
    })
}

/// The Debian mirror and its security mirror named by a `--mirror` argument: `apt` is this
/// machine's pair from its apt sources; any other URL is taken with `URL-security` beside it.
pub fn mirror_pair(arg: &str) -> Result<(String, String), DebianError> {
    if arg == "apt" {
        return Ok((system_mirror()?, system_security_mirror()?));
    }
    Ok((
        arg.to_string(),
        format!("{}-security", arg.trim_end_matches('/')),
    ))
}

/// This machine's Debian mirror (see [`system_mirror_in`]).
pub fn system_mirror() -> Result<String, DebianError> {
    system_mirror_in(Path::new("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_deb822_and_one_line_sources() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("etc/apt/sources.list.d");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("debian.sources"),
            "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n\nTypes: deb deb-src\nURIs: http://mirror.example/debian\nSuites: bookworm\nComponents: main\n",
        )
        .unwrap();
        assert_eq!(
            system_mirror_in(dir.path()).unwrap(),
            "http://mirror.example/debian"
        );
        std::fs::remove_file(d.join("debian.sources")).unwrap();
        std::fs::write(
            dir.path().join("etc/apt/sources.list"),
            "# x\ndeb [arch=amd64 signed-by=/k] http://m.example/debian bookworm main\n",
        )
        .unwrap();
        assert_eq!(
            system_mirror_in(dir.path()).unwrap(),
            "http://m.example/debian"
        );
    }
}
