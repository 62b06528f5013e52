//! After a reinstall's first boot: wait for the new system's ssh, record its new host key,
//! and run the rendered post-install check (`post-install-check.sh`, the install self-test's
//! checks) over one ssh session.
//!
//! The reinstalled box has new host keys, which the admin's `known_hosts` rightly no longer
//! matches. They are read with `ssh-keyscan` when the box first answers, written to a
//! known-hosts file of the reinstall's own and printed as fingerprints; the check then runs
//! with that file and `StrictHostKeyChecking=yes`, so it talks to the key just recorded and
//! nothing else.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::OpsError;
use crate::qemu::Report;

/// Where the new system's sshd is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// `USER@HOST` (HOST an address or a name).
    pub dest: String,
    /// TCP port.
    pub port: u16,
}

impl SshTarget {
    /// The host part of the destination.
    pub fn host(&self) -> &str {
        self.dest.rsplit_once('@').map_or(&self.dest, |(_, h)| h)
    }

    fn err(&self, reason: impl Into<String>) -> OpsError {
        OpsError::Ssh {
            dest: format!("{}:{}", self.dest, self.port),
            reason: reason.into(),
        }
    }

    /// Checks the destination is one ssh word (no option, no blank).
    pub fn validate(&self) -> Result<(), OpsError> {
        if self.dest.is_empty()
            || self.dest.starts_with('-')
            || self
                .dest
                .contains(|c: char| c.is_whitespace() || c.is_control())
            || self.host().is_empty()
        {
            return Err(self.err("not an ssh destination (USER@HOST)"));
        }
        Ok(())
    }
}

/// Whether an ssh server speaks at `addr`: its identification string (`SSH-2.0-…`, RFC 4253
/// §4.2) within a few seconds. A port that only accepts connections (a NAT or QEMU port
/// forward in front of a box still booting, a load balancer) is not an ssh server.
fn ssh_speaks(addr: &SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(addr, Duration::from_secs(3)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    // Servers may send other lines before the identification; it starts a line.
    while got.len() < 8192 {
        match std::io::Read::read(&mut s, &mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        if got.starts_with(b"SSH-") || got.windows(5).any(|w| w == b"\nSSH-") {
            return true;
        }
    }
    false
}

/// Waits until an ssh server speaks on the target's port ([`ssh_speaks`]); `Err` after `limit`.
pub fn wait_for_ssh(target: &SshTarget, limit: Duration) -> Result<Duration, OpsError> {
    let start = Instant::now();
    loop {
        let addrs: Vec<SocketAddr> = (target.host(), target.port)
            .to_socket_addrs()
            .map(|a| a.collect())
            .unwrap_or_default();
        if addrs.iter().any(ssh_speaks) {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            return Err(target.err(format!(
                "no ssh server answered on port {} within {} s",
                target.port,
                limit.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// The host key types Debian's openssh-server generates at install; ssh-keyscan's names.
pub const HOST_KEY_TYPES: [&str; 3] = ["ed25519", "ecdsa", "rsa"];

/// How many times [`record_host_keys`] asks for key types the box did not show yet.
pub const KEYSCAN_ROUNDS: usize = 3;

/// The ssh-keyscan type (`ed25519`, `ecdsa`, `rsa`) of a known_hosts line, if standard.
fn key_type(line: &str) -> Option<&'static str> {
    let algo = line.split_whitespace().nth(1)?;
    if algo == "ssh-ed25519" {
        Some("ed25519")
    } else if algo.starts_with("ecdsa-sha2-") {
        Some("ecdsa")
    } else if algo == "ssh-rsa" {
        Some("rsa")
    } else {
        None
    }
}

/// One `ssh-keyscan` of `types`: the known_hosts lines it printed.
fn keyscan(target: &SshTarget, types: &[&str]) -> Result<Vec<String>, OpsError> {
    // -T bounds each read; the deadline bounds the whole scan.
    let out = crate::exec::run_deadline_status(
        "ssh-keyscan",
        Command::new("ssh-keyscan")
            .args(["-T", "10", "-t", &types.join(",")])
            .args(["-p", &target.port.to_string(), "--"])
            .arg(target.host()),
        None,
        Duration::from_secs(60),
    )
    .map_err(|e| target.err(e.to_string()))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect())
}

/// The host keys read so far and the standard types still missing.
#[derive(Debug, Default)]
struct ScannedKeys {
    lines: Vec<String>,
}

impl ScannedKeys {
    /// Adds the lines of one scan, one line per key type.
    fn add(&mut self, lines: Vec<String>) {
        for l in lines {
            let t = key_type(&l);
            let known = self
                .lines
                .iter()
                .any(|k| *k == l || (t.is_some() && key_type(k) == t));
            if !known {
                self.lines.push(l);
            }
        }
    }

    /// The standard types no scan returned yet.
    fn missing(&self) -> Vec<&'static str> {
        HOST_KEY_TYPES
            .into_iter()
            .filter(|t| !self.lines.iter().any(|l| key_type(l) == Some(*t)))
            .collect()
    }
}

/// Reads the target's host keys with `ssh-keyscan` into `known_hosts` (replaced) and returns
/// their fingerprints (`ssh-keygen -l`), one line each, and the standard key types the box
/// never showed.
///
/// ssh-keyscan opens one connection per key type, each within its timeout: a box still busy
/// with its first boot can let one of them time out (seen in QEMU: the ed25519 key missing
/// while RSA and ECDSA came). The types not read are asked again, [`KEYSCAN_ROUNDS`] times in
/// all, so that the key ssh prefers is not silently left out.
pub fn record_host_keys(
    target: &SshTarget,
    known_hosts: &Path,
) -> Result<(Vec<String>, Vec<&'static str>), OpsError> {
    let mut keys = ScannedKeys::default();
    let mut types: Vec<&str> = HOST_KEY_TYPES.to_vec();
    for round in 0..KEYSCAN_ROUNDS {
        if round > 0 {
            std::thread::sleep(Duration::from_secs(5));
        }
        keys.add(keyscan(target, &types)?);
        types = keys.missing();
        if types.is_empty() {
            break;
        }
    }
    if keys.lines.is_empty() {
        return Err(target.err("ssh-keyscan read no host key"));
    }
    let text: String = keys.lines.iter().map(|l| format!("{l}\n")).collect();
    let tmp = known_hosts.with_extension("tmp");
    std::fs::write(&tmp, &text)
        .and_then(|()| std::fs::rename(&tmp, known_hosts))
        .map_err(|e| target.err(format!("writing {}: {e}", known_hosts.display())))?;
    let fp = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(known_hosts)
        .output()
        .map_err(|e| target.err(format!("cannot run ssh-keygen: {e}")))?;
    Ok((
        String::from_utf8_lossy(&fp.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
        types,
    ))
}

/// What the post-install check reported.
#[derive(Debug, Clone)]
pub struct CheckRun {
    /// The parsed checks.
    pub report: Report,
    /// The script's exit status (the number of failed checks).
    pub status: i32,
}

/// The default wall-clock deadline of the whole post-install check (ssh and the script);
/// `reinstall --check-timeout` sets another.
pub const CHECK_DEADLINE: Duration = Duration::from_secs(10 * 60);

/// ssh's exit status when the connection itself failed.
const SSH_FAILED: i32 = 255;

/// Runs `script` on the target with `sh -s`, trusting only the keys in `known_hosts`. When
/// ssh and the script have not ended by `deadline`, ssh and every process it started are
/// killed and the error is [`OpsError::Hung`], naming the post-install check.
pub fn run_check(
    target: &SshTarget,
    known_hosts: &Path,
    script: &str,
    deadline: Duration,
) -> Result<CheckRun, OpsError> {
    let mut cmd = Command::new("ssh");
    if let Some(cfg) = super::ssh_config() {
        cmd.arg("-F").arg(cfg);
    }
    cmd.args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .args(super::SSH_CONNECT)
        .args(super::SSH_ALIVE)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args([
            "-p",
            &target.port.to_string(),
            "--",
            &target.dest,
            "sh",
            "-s",
        ]);
    let out = crate::exec::run_deadline_status(
        "the post-install check",
        &mut cmd,
        Some(script.as_bytes()),
        deadline,
    )
    .map_err(|e| match e {
        crate::exec::ExecError::TimedOut { .. } => OpsError::Hung {
            dest: format!("{}:{}", target.dest, target.port),
            reason: e.to_string(),
        },
        e => target.err(e.to_string()),
    })?;
    let status = out.status.code().unwrap_or(SSH_FAILED);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = Report::parse(&stdout);
    if status == SSH_FAILED || report.done_rc.is_none() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(4).collect();
        return Err(target.err(format!(
            "the post-install check did not finish ({}): {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        )));
    }
    Ok(CheckRun { report, status })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A round that missed a type leaves it missing; a later round fills it without
    /// duplicating the types already read; a non-standard type is kept, never asked again.
    #[test]
    fn keys_from_several_scans_are_merged_by_type() {
        let line = |algo: &str, key: &str| format!("[127.0.0.1]:2222 {algo} {key}");
        let mut k = ScannedKeys::default();
        k.add(vec![
            line("ssh-rsa", "AAAAB3-r"),
            line("ecdsa-sha2-nistp256", "AAAAE2-e"),
        ]);
        assert_eq!(k.missing(), ["ed25519"]);
        k.add(vec![
            line("ssh-rsa", "AAAAB3-r"),
            line("ssh-ed25519", "AAAAC3-d"),
            line("sk-ssh-ed25519@openssh.com", "AAAAGn-s"),
        ]);
        assert!(k.missing().is_empty());
        assert_eq!(k.lines.len(), 4, "{:?}", k.lines);
        assert_eq!(k.lines.iter().filter(|l| l.contains("ssh-rsa")).count(), 1);
    }

    /// A listener that accepts and says nothing (a port forward to a box still booting) is not
    /// ssh; one that sends an identification string after a banner line is.
    #[test]
    fn only_a_server_that_identifies_as_ssh_counts() {
        use std::io::Write;
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (c, _) = silent.accept().unwrap();
            drop(c);
        });
        assert!(!ssh_speaks(&addr));
        t.join().unwrap();
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut c, _) = server.accept().unwrap();
            c.write_all(b"welcome\r\nSSH-2.0-OpenSSH_10.0\r\n").unwrap();
        });
        assert!(ssh_speaks(&addr));
        t.join().unwrap();
        let target = SshTarget {
            dest: "root@127.0.0.1".into(),
            port: addr.port(),
        };
        let e = wait_for_ssh(&target, Duration::from_millis(10)).unwrap_err();
        assert!(e.to_string().contains("no ssh server answered"), "{e}");
    }

    #[test]
    fn destinations_are_one_ssh_word() {
        let t = |d: &str| SshTarget {
            dest: d.into(),
            port: 22,
        };
        assert!(t("root@91.224.148.84").validate().is_ok());
        assert_eq!(t("root@91.224.148.84").host(), "91.224.148.84");
        assert_eq!(t("alice").host(), "alice");
        for bad in ["", "-oProxyCommand=x", "root@a b", "root@", "a\nb"] {
            assert!(t(bad).validate().is_err(), "{bad:?}");
        }
    }
}
