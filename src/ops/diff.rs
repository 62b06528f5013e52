//! Drift: the files `render` produces for a host (its `rootfs/`) against the live host, over
//! one SSH session. The remote side hashes every rendered path (`sha256sum`, `stat -c %a`) and
//! sends back the content of a drifted file only when it is not a secret, so secret content
//! never leaves the host and is never printed.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::{ssh_command, OpsError};
use crate::output::Tree;

/// One rendered file as it should be on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Absolute path on the host, e.g. `/etc/rc.local`.
    pub path: String,
    /// Content.
    pub bytes: Vec<u8>,
    /// Permission bits.
    pub mode: u32,
}

impl Expected {
    fn sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.bytes))
    }
}

/// The files of a rendered tree that land on the installed system (`rootfs/…`).
pub fn expected_from_tree(tree: &Tree) -> Vec<Expected> {
    tree.files()
        .filter_map(|(p, f)| {
            p.strip_prefix("rootfs/").map(|rel| Expected {
                path: format!("/{rel}"),
                bytes: f.bytes.clone(),
                mode: f.mode,
            })
        })
        .collect()
}

/// True for files whose content must never be printed (password hashes, private keys, the
/// corosync authkey).
pub fn is_secret(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    matches!(
        name,
        "shadow" | "gshadow" | "shadow-" | "gshadow-" | "authkey"
    ) || name.ends_with("_key")
        || name.ends_with(".key")
        || name.ends_with(".pem")
        || name.contains("private")
        || path.contains("/private/")
        || (name.starts_with("ssh_host_") && !name.ends_with(".pub"))
        || (path.contains("/.ssh/id_") && !name.ends_with(".pub"))
}

/// What the host has at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// Nothing.
    Missing,
    /// Something that is not a regular file (directory, symlink, device).
    NotAFile,
    /// Exists but could not be read.
    Unreadable,
    /// A regular file.
    File {
        /// Permission bits.
        mode: u32,
        /// sha256, hex.
        sha256: String,
        /// Content, sent only when it differs and is not a secret.
        content: Option<Vec<u8>>,
    },
}

fn sh_quote(s: &str) -> Result<String, OpsError> {
    if s.contains(['\'', '\n', '\r', '\0']) {
        return Err(OpsError::BadPath(s.to_string()));
    }
    Ok(format!("'{s}'"))
}

/// The shell script the host runs (stdin of `ssh DEST sh -s`).
pub fn probe_script(expected: &[Expected]) -> Result<String, OpsError> {
    let mut s = String::from(concat!(
        "set -u\nLC_ALL=C; export LC_ALL\n",
        "probe() {\n",
        "  if [ -L \"$1\" ] || { [ -e \"$1\" ] && [ ! -f \"$1\" ]; }; then echo \"PB-NOTFILE $1\"; return; fi\n",
        "  if [ ! -e \"$1\" ]; then echo \"PB-MISSING $1\"; return; fi\n",
        "  m=$(stat -c %a \"$1\" 2>/dev/null) || { echo \"PB-UNREADABLE $1\"; return; }\n",
        "  h=$(sha256sum < \"$1\" 2>/dev/null) || { echo \"PB-UNREADABLE $1\"; return; }\n",
        "  h=${h%% *}\n",
        "  echo \"PB-FILE $m $h $1\"\n",
        "  if [ \"$h\" != \"$2\" ] && [ \"$3\" = 0 ]; then echo PB-BODY; base64 < \"$1\"; echo PB-END; fi\n",
        "}\n",
    ));
    for e in expected {
        s.push_str(&format!(
            "probe {} {} {}\n",
            sh_quote(&e.path)?,
            e.sha256(),
            if is_secret(&e.path) { 1 } else { 0 }
        ));
    }
    s.push_str("echo PB-DONE\n");
    Ok(s)
}

/// Parses the probe's output.
pub fn parse_probe(out: &str) -> Result<BTreeMap<String, Remote>, String> {
    let mut map = BTreeMap::new();
    let mut lines = out.lines();
    let mut last: Option<String> = None;
    let mut done = false;
    while let Some(l) = lines.next() {
        if let Some(p) = l.strip_prefix("PB-MISSING ") {
            map.insert(p.to_string(), Remote::Missing);
        } else if let Some(p) = l.strip_prefix("PB-NOTFILE ") {
            map.insert(p.to_string(), Remote::NotAFile);
        } else if let Some(p) = l.strip_prefix("PB-UNREADABLE ") {
            map.insert(p.to_string(), Remote::Unreadable);
        } else if let Some(rest) = l.strip_prefix("PB-FILE ") {
            let mut it = rest.splitn(3, ' ');
            let (Some(m), Some(h), Some(p)) = (it.next(), it.next(), it.next()) else {
                return Err(format!("bad line `{l}`"));
            };
            let mode = u32::from_str_radix(m, 8).map_err(|_| format!("bad mode in `{l}`"))?;
            map.insert(
                p.to_string(),
                Remote::File {
                    mode,
                    sha256: h.to_string(),
                    content: None,
                },
            );
            last = Some(p.to_string());
        } else if l == "PB-BODY" {
            let mut b64 = String::new();
            loop {
                match lines.next() {
                    Some("PB-END") => break,
                    Some(x) => b64.push_str(x.trim()),
                    None => return Err("content without its end marker".into()),
                }
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("bad base64 content: {e}"))?;
            match last.as_ref().and_then(|p| map.get_mut(p)) {
                Some(Remote::File { content, .. }) => *content = Some(bytes),
                _ => return Err("content before any file".into()),
            }
        } else if l == "PB-DONE" {
            done = true;
        } else if !l.trim().is_empty() {
            return Err(format!("unexpected line `{l}`"));
        }
    }
    if !done {
        return Err("the probe did not finish (no PB-DONE)".into());
    }
    Ok(map)
}

/// How one path drifted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DriftKind {
    /// The host has no file there.
    Missing,
    /// The host has something else than a regular file there.
    NotAFile,
    /// The file could not be read.
    Unreadable,
    /// Content differs.
    Content {
        /// sha256 the render gives.
        expected_sha256: String,
        /// sha256 on the host.
        actual_sha256: String,
        /// Unified diff (rendered -> host); `None` for secrets and binary files.
        diff: Option<String>,
    },
    /// Only the mode differs.
    Mode {
        /// Rendered mode, octal.
        expected: String,
        /// Mode on the host, octal.
        actual: String,
    },
}

/// One drifted path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// Absolute path on the host.
    pub path: String,
    /// Its content is a secret (never shown).
    pub secret: bool,
    /// What differs.
    #[serde(flatten)]
    pub kind: DriftKind,
    /// The mode differs too (with a content change).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode_change: Option<(String, String)>,
}

/// The drift report of one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// ssh destination.
    pub dest: String,
    /// Paths checked.
    pub checked: usize,
    /// Drifted paths, sorted.
    pub drift: Vec<Drift>,
}

/// Compares what the host has with what the render gives.
pub fn compare(dest: &str, expected: &[Expected], remote: &BTreeMap<String, Remote>) -> Report {
    let mut drift = Vec::new();
    for e in expected {
        let secret = is_secret(&e.path);
        let want_mode = format!("{:04o}", e.mode & 0o7777);
        let d = |kind| Drift {
            path: e.path.clone(),
            secret,
            kind,
            mode_change: None,
        };
        match remote.get(&e.path) {
            None | Some(Remote::Missing) => drift.push(d(DriftKind::Missing)),
            Some(Remote::NotAFile) => drift.push(d(DriftKind::NotAFile)),
            Some(Remote::Unreadable) => drift.push(d(DriftKind::Unreadable)),
            Some(Remote::File {
                mode,
                sha256,
                content,
            }) => {
                let got_mode = format!("{:04o}", mode & 0o7777);
                let mode_change =
                    (got_mode != want_mode).then(|| (want_mode.clone(), got_mode.clone()));
                if *sha256 != e.sha256() {
                    let diff = if secret {
                        None
                    } else {
                        content.as_ref().and_then(|c| {
                            let (a, b) = (
                                std::str::from_utf8(&e.bytes).ok()?,
                                std::str::from_utf8(c).ok()?,
                            );
                            Some(
                                similar::TextDiff::from_lines(a, b)
                                    .unified_diff()
                                    .context_radius(3)
                                    .header(
                                        &format!("rendered{}", e.path),
                                        &format!("{dest}:{}", e.path),
                                    )
                                    .to_string(),
                            )
                        })
                    };
                    drift.push(Drift {
                        mode_change,
                        ..d(DriftKind::Content {
                            expected_sha256: e.sha256(),
                            actual_sha256: sha256.clone(),
                            diff,
                        })
                    });
                } else if let Some((expected, actual)) = mode_change {
                    drift.push(d(DriftKind::Mode { expected, actual }));
                }
            }
        }
    }
    drift.sort_by(|a, b| a.path.cmp(&b.path));
    Report {
        dest: dest.to_string(),
        checked: expected.len(),
        drift,
    }
}

/// Runs the probe on `dest` in one ssh session and compares, within
/// [`SSH_DEADLINE`](super::SSH_DEADLINE).
pub fn run(dest: &str, expected: &[Expected]) -> Result<Report, OpsError> {
    run_within(dest, expected, super::SSH_DEADLINE)
}

/// [`run`] with another deadline: when ssh (its connection, or the probe) has not ended by
/// then, ssh and every process it started are killed and the error is [`OpsError::Hung`].
pub fn run_within(
    dest: &str,
    expected: &[Expected],
    deadline: std::time::Duration,
) -> Result<Report, OpsError> {
    let script = probe_script(expected)?;
    let ssh_err = |reason: String| OpsError::Ssh {
        dest: dest.to_string(),
        reason,
    };
    let out = crate::exec::run_deadline(
        &format!("the drift probe on {dest}"),
        ssh_command(dest).args(["sh", "-s"]),
        Some(script.as_bytes()),
        deadline,
    )
    .map_err(|e| match e {
        crate::exec::ExecError::TimedOut { .. } => OpsError::Hung {
            dest: dest.to_string(),
            reason: e.to_string(),
        },
        e => ssh_err(e.to_string()),
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let remote = parse_probe(&stdout).map_err(|reason| OpsError::Protocol {
        dest: dest.to_string(),
        reason,
    })?;
    Ok(compare(dest, expected, &remote))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(path: &str, text: &str, mode: u32) -> Expected {
        Expected {
            path: path.into(),
            bytes: text.as_bytes().to_vec(),
            mode,
        }
    }

    /// The probe script run by a real `sh` over a scratch directory, parsed and compared.
    #[test]
    fn probe_runs_in_sh_and_finds_exactly_the_drift() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| format!("{}/{n}", dir.path().display());
        use std::os::unix::fs::PermissionsExt;
        let write = |n: &str, t: &str, m: u32| {
            std::fs::write(p(n), t).unwrap();
            std::fs::set_permissions(p(n), std::fs::Permissions::from_mode(m)).unwrap();
        };
        write("same", "a\nb\n", 0o644);
        write("edited", "one\ntwo\nthree\n", 0o644);
        write("mode", "x\n", 0o600);
        write("shadow", "root:$6$new:1::::::\n", 0o640);
        std::fs::create_dir(p("dir")).unwrap();
        let expected = vec![
            e(&p("same"), "a\nb\n", 0o644),
            e(&p("edited"), "one\n2\nthree\n", 0o644),
            e(&p("mode"), "x\n", 0o755),
            e(&p("gone"), "z\n", 0o644),
            e(&p("shadow"), "root:$6$old:1::::::\n", 0o640),
            e(&p("dir"), "d\n", 0o644),
        ];
        let script = probe_script(&expected).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(!stdout.contains("$6$new"), "secret content left the host");
        let remote = parse_probe(&stdout).unwrap();
        let r = compare("h", &expected, &remote);
        let kinds: Vec<(String, &str)> = r
            .drift
            .iter()
            .map(|d| {
                (
                    d.path.rsplit('/').next().unwrap().to_string(),
                    match &d.kind {
                        DriftKind::Missing => "missing",
                        DriftKind::NotAFile => "not-a-file",
                        DriftKind::Unreadable => "unreadable",
                        DriftKind::Content { .. } => "content",
                        DriftKind::Mode { .. } => "mode",
                    },
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("dir".to_string(), "not-a-file"),
                ("edited".to_string(), "content"),
                ("gone".to_string(), "missing"),
                ("mode".to_string(), "mode"),
                ("shadow".to_string(), "content"),
            ]
        );
        let edited = &r.drift[1];
        let DriftKind::Content { diff: Some(d), .. } = &edited.kind else {
            panic!("{edited:?}")
        };
        assert!(d.contains("-2\n+two\n"), "{d}");
        let shadow = &r.drift[4];
        assert!(shadow.secret);
        assert!(matches!(
            &shadow.kind,
            DriftKind::Content { diff: None, .. }
        ));
    }

    #[test]
    fn secrets_and_quoting() {
        for s in [
            "/etc/shadow",
            "/etc/corosync/authkey",
            "/etc/ssh/ssh_host_ed25519_key",
            "/root/.ssh/id_ed25519",
            "/etc/ssl/private/x",
        ] {
            assert!(is_secret(s), "{s}");
        }
        for s in [
            "/etc/hosts",
            "/etc/ssh/ssh_host_ed25519_key.pub",
            "/root/.ssh/authorized_keys",
        ] {
            assert!(!is_secret(s), "{s}");
        }
        assert!(probe_script(&[e("/etc/it's", "", 0o644)]).is_err());
        assert!(parse_probe("PB-FILE 644 abc /x\n").is_err(), "no PB-DONE");
    }
}
