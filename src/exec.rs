//! The one wrapper for external programs (qemu, gpgv, mdadm, debootstrap, …).
//!
//! Every call names its task, closes stdin, captures output, and on failure returns an error
//! holding the command line, the exit status and the tail of stderr. A missing program is
//! reported with the Debian package that provides it.

use std::ffi::OsStr;
use std::io;
use std::process::{Command, Output, Stdio};

/// Lines of stderr kept in an error.
const TAIL_LINES: usize = 20;

/// Why an external program failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The program is not installed.
    #[error("{task}: `{program}` is not installed (Debian package: {package})")]
    NotFound {
        /// What we were doing.
        task: String,
        /// The program.
        program: String,
        /// The Debian package that provides it.
        package: String,
    },
    /// The program could not be started.
    #[error("{task}: cannot run `{program}`: {source}")]
    Spawn {
        /// What we were doing.
        task: String,
        /// The program.
        program: String,
        /// The cause.
        source: io::Error,
    },
    /// The program ran and failed.
    #[error("{task}: `{command}` failed ({status}){tail}")]
    Failed {
        /// What we were doing.
        task: String,
        /// The command line.
        command: String,
        /// Exit status.
        status: String,
        /// Last lines of stderr, prefixed by a newline when not empty.
        tail: String,
    },
}

/// The Debian package that ships `program`, for error messages.
pub fn package_of(program: &str) -> &'static str {
    match program {
        "qemu-system-x86_64" => "qemu-system-x86",
        "qemu-img" => "qemu-utils",
        "gpgv" => "gpgv",
        "mdadm" => "mdadm",
        "sgdisk" => "gdisk",
        "sfdisk" => "fdisk",
        "debootstrap" => "debootstrap",
        "corosync" | "corosync-quorumtool" | "corosync-keygen" => "corosync",
        "shellcheck" => "shellcheck",
        "ip" => "iproute2",
        "iptables" => "iptables",
        "skopeo" => "skopeo",
        "umoci" => "umoci",
        "podman" => "podman",
        "buildah" => "buildah",
        "unshare" | "mount" | "losetup" => "util-linux",
        "debconf-set-selections" => "debconf",
        "mkfs.ext4" => "e2fsprogs",
        "dpkg-deb" => "dpkg",
        "git" => "git",
        "cpio" => "cpio",
        "depmod" => "kmod",
        "curl" => "curl",
        _ => "(unknown; see `apt-file search`)",
    }
}

/// Renders a command line for messages (arguments are not secrets by design: secrets never
/// go on a command line in picaboot).
pub fn command_line(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    if lines.is_empty() {
        String::new()
    } else {
        format!("\n  {}", lines[start..].join("\n  "))
    }
}

fn spawn_error(task: &str, program: &OsStr, e: io::Error) -> ExecError {
    let program = program.to_string_lossy().into_owned();
    if e.kind() == io::ErrorKind::NotFound {
        ExecError::NotFound {
            task: task.to_string(),
            package: package_of(&program).to_string(),
            program,
        }
    } else {
        ExecError::Spawn {
            task: task.to_string(),
            program,
            source: e,
        }
    }
}

/// Runs `cmd` to completion with stdin closed and output captured; fails on a non-zero exit.
pub fn run(task: &str, cmd: &mut Command) -> Result<Output, ExecError> {
    log::debug!("{task}: {}", command_line(cmd));
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| spawn_error(task, cmd.get_program(), e))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(ExecError::Failed {
            task: task.to_string(),
            command: command_line(cmd),
            status: out.status.to_string(),
            tail: tail(if out.stderr.is_empty() {
                &out.stdout
            } else {
                &out.stderr
            }),
        })
    }
}

/// Like [`run`], but hands every line the program prints (stdout and stderr, as they come) to
/// `on_line` while it runs (a progress spinner shows the last one); stdout is also returned,
/// and on failure the error holds the tail of stderr (else of stdout).
pub fn run_lines(
    task: &str,
    cmd: &mut Command,
    on_line: &mut dyn FnMut(&str),
) -> Result<Output, ExecError> {
    use std::io::BufRead;
    log::debug!("{task}: {}", command_line(cmd));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_error(task, cmd.get_program(), e))?;
    let (tx, rx) = std::sync::mpsc::channel::<(bool, Vec<u8>)>();
    let pump = |r: Box<dyn io::Read + Send>, is_err: bool, tx: std::sync::mpsc::Sender<_>| {
        std::thread::spawn(move || {
            let mut r = io::BufReader::new(r);
            loop {
                let mut line = Vec::new();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if tx.send((is_err, line)).is_err() {
                            break;
                        }
                    }
                }
            }
        })
    };
    let t1 = pump(
        Box::new(child.stdout.take().expect("piped")),
        false,
        tx.clone(),
    );
    let t2 = pump(Box::new(child.stderr.take().expect("piped")), true, tx);
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    for (is_err, line) in rx {
        on_line(String::from_utf8_lossy(&line).trim_end());
        if is_err {
            stderr.extend_from_slice(&line);
        } else {
            stdout.extend_from_slice(&line);
        }
    }
    let _ = (t1.join(), t2.join());
    let status = child
        .wait()
        .map_err(|e| spawn_error(task, cmd.get_program(), e))?;
    if status.success() {
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    } else {
        Err(ExecError::Failed {
            task: task.to_string(),
            command: command_line(cmd),
            status: status.to_string(),
            tail: tail(if stderr.is_empty() { &stdout } else { &stderr }),
        })
    }
}

/// Starts `cmd` in the background with stdin closed; stdout and stderr are as the caller set
/// them (a log file, usually). The caller owns the child and must wait for or kill it.
pub fn spawn(task: &str, cmd: &mut Command) -> Result<std::process::Child, ExecError> {
    log::debug!("{task}: {}", command_line(cmd));
    cmd.stdin(Stdio::null())
        .spawn()
        .map_err(|e| spawn_error(task, cmd.get_program(), e))
}

/// Like [`run`], returning stdout as text.
pub fn run_stdout(task: &str, cmd: &mut Command) -> Result<String, ExecError> {
    run(task, cmd).map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn run_lines_streams_both_outputs_and_keeps_the_tail() {
        let mut seen = Vec::new();
        let out = super::run_lines(
            "t",
            std::process::Command::new("sh").args(["-c", "echo a; echo b >&2; echo c"]),
            &mut |l| seen.push(l.to_string()),
        )
        .unwrap();
        seen.sort();
        assert_eq!(seen, ["a", "b", "c"]);
        assert_eq!(out.stdout, b"a\nc\n");
        let e = super::run_lines(
            "t",
            std::process::Command::new("sh").args(["-c", "echo oops >&2; exit 3"]),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(e.to_string().contains("oops"), "{e}");
    }

    use super::*;

    #[test]
    fn missing_program_names_package() {
        let e = run("probe", &mut Command::new("shellcheck-does-not-exist")).unwrap_err();
        assert!(matches!(e, ExecError::NotFound { .. }), "{e}");
    }

    #[test]
    fn failure_keeps_stderr_tail() {
        let e = run(
            "fail",
            Command::new("sh").args(["-c", "echo boom >&2; exit 3"]),
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("boom") && msg.contains("exit status: 3"),
            "{msg}"
        );
    }
}
