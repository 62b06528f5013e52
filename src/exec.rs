//! The one wrapper for external programs (qemu, gpgv, mdadm, debootstrap, …).
//!
//! Every call names its task, closes stdin, captures output, and on failure returns an error
//! holding the command line, the exit status and the tail of stderr. A missing program is
//! reported with the Debian package that provides it.

use std::ffi::OsStr;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// The program did not end by its deadline: its whole process group was killed.
    #[error("{task}: `{command}` did not finish within {} and was killed (with every process it started){stderr_tail}", secs(*after))]
    TimedOut {
        /// What we were doing (what hung).
        task: String,
        /// The command line.
        command: String,
        /// The deadline it overran.
        after: Duration,
        /// Last lines of stderr, prefixed by a newline when not empty.
        stderr_tail: String,
    },
    /// The program wrote more than [`PROGRAM_OUTPUT`](crate::limits::PROGRAM_OUTPUT) on
    /// stdout or stderr: its whole process group was killed.
    #[error("{task}: `{command}` wrote more than the {kind} limit of {} on one stream and was killed (with every process it started)", crate::limits::human(*limit))]
    TooMuchOutput {
        /// What we were doing.
        task: String,
        /// The command line.
        command: String,
        /// The kind of limit ([`crate::limits::Limit::kind`]).
        kind: &'static str,
        /// The limit in bytes.
        limit: u64,
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
        "openssl" => "openssl",
        "htpasswd" => "apache2-utils",
        "docker-registry" | "/usr/bin/docker-registry" => "docker-registry",
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
        Err(failed(task, cmd, &out))
    }
}

/// The error of a program that ended with a failure status: its command line, its status,
/// the tail of its stderr (else of its stdout).
fn failed(task: &str, cmd: &Command, out: &Output) -> ExecError {
    ExecError::Failed {
        task: task.to_string(),
        command: command_line(cmd),
        status: out.status.to_string(),
        tail: tail(if out.stderr.is_empty() {
            &out.stdout
        } else {
            &out.stderr
        }),
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

/// A duration for a message: `20s`, `0.7s`.
fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// How long a process group gets between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// Like [`run`], with a wall-clock deadline: the program runs in a process group of its own
/// (`setpgid(0, 0)`), and when `deadline` passes the whole group is sent SIGTERM, then SIGKILL
/// after a short grace, so that nothing it started (a shell's children, ssh's proxy command)
/// outlives it. The error is [`ExecError::TimedOut`], naming the task and keeping the tail of
/// stderr. Modelled on coreos-installer's and bootc's `CommandRunExt` runners. `stdin` is
/// written to the program and then closed (`None`: no input).
pub fn run_deadline(
    task: &str,
    cmd: &mut Command,
    stdin: Option<&[u8]>,
    deadline: Duration,
) -> Result<Output, ExecError> {
    let out = run_deadline_status(task, cmd, stdin, deadline)?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(failed(task, cmd, &out))
    }
}

/// As [`run_deadline`], but a program that ends in time is `Ok` whatever its exit status
/// (for callers that read a status, e.g. the number of failed checks).
pub fn run_deadline_status(
    task: &str,
    cmd: &mut Command,
    stdin: Option<&[u8]>,
    deadline: Duration,
) -> Result<Output, ExecError> {
    let input = match stdin {
        Some(b) => Input::Bytes(b),
        None => Input::Nothing,
    };
    run_deadline_input(task, cmd, input, deadline)
}

/// What a program run with a deadline reads on its stdin.
#[derive(Debug)]
pub enum Input<'a> {
    /// Nothing (`/dev/null`).
    Nothing,
    /// These bytes, written by a thread of ours.
    Bytes(&'a [u8]),
    /// This file, read by the program itself (a system image on its way over ssh).
    File(std::fs::File),
}

/// As [`run_deadline_status`], with the program's stdin given as an [`Input`].
pub fn run_deadline_input(
    task: &str,
    cmd: &mut Command,
    input: Input<'_>,
    deadline: Duration,
) -> Result<Output, ExecError> {
    let (stdin, file) = match input {
        Input::Nothing => (None, None),
        Input::Bytes(b) => (Some(b), None),
        Input::File(f) => (None, Some(f)),
    };
    log::debug!(
        "{task} (deadline {}s): {}",
        deadline.as_secs(),
        command_line(cmd)
    );
    let start = Instant::now();
    let mut child = cmd
        .stdin(match (stdin, file) {
            (Some(_), _) => Stdio::piped(),
            (None, Some(f)) => Stdio::from(f),
            (None, None) => Stdio::null(),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| spawn_error(task, cmd.get_program(), e))?;
    let pgid = child.id();
    // While it runs, a SIGINT/SIGTERM that a command handles (see `cleanup::on_signals`) ends
    // the group too: in a group of its own, the program no longer gets the terminal's Ctrl-C.
    // Disarmed (not run) once the leader is reaped, so a reused id is never signalled.
    let group = crate::cleanup::Guard::new(crate::cleanup::Action::ProcessGroup(pgid));
    // Readers that never block the waiter: a grandchild outside the group could hold a pipe
    // open forever, so what they have read is taken, not joined for.
    // At most PROGRAM_OUTPUT bytes are kept per stream; past it, the rest is read and dropped
    // (so that the program never blocks on a full pipe) until the group is killed below.
    let limit = crate::limits::PROGRAM_OUTPUT;
    let overflow = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let collect = |r: Box<dyn io::Read + Send>| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let b = Arc::clone(&buf);
        let over = Arc::clone(&overflow);
        let t = std::thread::spawn(move || {
            let mut r = r;
            let mut chunk = [0u8; 8192];
            while let Ok(n) = r.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                let mut b = b.lock().unwrap_or_else(|p| p.into_inner());
                if (b.len() + n) as u64 > limit.bytes {
                    over.store(true, std::sync::atomic::Ordering::SeqCst);
                    continue;
                }
                b.extend_from_slice(&chunk[..n]);
            }
        });
        (buf, t)
    };
    use std::io::Read;
    let (out_buf, out_t) = collect(Box::new(child.stdout.take().expect("piped")));
    let (err_buf, err_t) = collect(Box::new(child.stderr.take().expect("piped")));
    if let (Some(input), Some(mut w)) = (stdin, child.stdin.take()) {
        let input = input.to_vec();
        // A writer thread: a program that does not read its input must not block us.
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = w.write_all(&input);
        });
    }
    let take =
        |b: &Arc<Mutex<Vec<u8>>>| std::mem::take(&mut *b.lock().unwrap_or_else(|p| p.into_inner()));
    let status = loop {
        if overflow.load(std::sync::atomic::Ordering::SeqCst) {
            kill_group(pgid, &mut child);
            group.disarm();
            return Err(ExecError::TooMuchOutput {
                task: task.to_string(),
                command: command_line(cmd),
                kind: limit.kind,
                limit: limit.bytes,
            });
        }
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() >= deadline => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(spawn_error(task, cmd.get_program(), e)),
        }
    };
    // A program that ended because a signal's cleanup killed it has no result to act on:
    // this thread waits for the handler to exit the process.
    crate::cleanup::hold_if_interrupted();
    let Some(status) = status else {
        kill_group(pgid, &mut child);
        group.disarm();
        let _ = (out_t.join(), err_t.join());
        return Err(ExecError::TimedOut {
            task: task.to_string(),
            command: command_line(cmd),
            after: deadline,
            stderr_tail: tail(&take(&err_buf)),
        });
    };
    group.disarm();
    // The program ended: its output is complete once the pipes close, unless something it
    // left behind holds them; the rest of the deadline bounds that wait too.
    while !(out_t.is_finished() && err_t.is_finished()) && start.elapsed() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (stdout, stderr) = (take(&out_buf), take(&err_buf));
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// SIGTERM to the process group `pgid`, SIGKILL after [`TERM_GRACE`] if any of it is left,
/// and the leader reaped.
pub fn kill_group(pgid: u32, child: &mut std::process::Child) {
    use rustix::process::{kill_process_group, test_kill_process_group, Pid, Signal};
    let Some(pid) = i32::try_from(pgid).ok().and_then(Pid::from_raw) else {
        let _ = child.kill();
        let _ = child.wait();
        return;
    };
    let _ = kill_process_group(pid, Signal::TERM);
    let t = Instant::now();
    while t.elapsed() < TERM_GRACE {
        // The leader is reaped as soon as it exits, so that the group's liveness is what the
        // test below sees (a zombie leader still counts as a member).
        let _ = child.try_wait();
        if test_kill_process_group(pid).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = kill_process_group(pid, Signal::KILL);
    let _ = child.wait();
}

crate::exit_class::fixed_class!(crate::exit_class::Class::Env; ExecError);

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

    #[test]
    fn a_program_that_hangs_ends_at_its_deadline_with_its_whole_group() {
        use rustix::process::{test_kill_process_group, Pid};
        // The shell starts a grandchild sleeper in the background, says where it is, then
        // sleeps itself: both must be gone when the deadline passes.
        let t = Instant::now();
        let e = run_deadline(
            "the post-install check",
            Command::new("sh").args([
                "-c",
                "sleep 1000 & echo \"stuck at step 2 pgid $$\" >&2; sleep 1000",
            ]),
            None,
            Duration::from_millis(700),
        )
        .unwrap_err();
        let took = t.elapsed();
        let msg = e.to_string();
        assert!(took < Duration::from_secs(4), "{took:?}");
        let ExecError::TimedOut {
            ref stderr_tail, ..
        } = e
        else {
            panic!("{msg}")
        };
        assert!(msg.starts_with("the post-install check: `sh -c "), "{msg}");
        assert!(
            msg.contains("did not finish within 0.7s and was killed"),
            "{msg}"
        );
        assert!(stderr_tail.contains("stuck at step 2"), "{msg}");
        let pgid: i32 = stderr_tail
            .rsplit(' ')
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            test_kill_process_group(Pid::from_raw(pgid).unwrap()).is_err(),
            "process group {pgid} is still alive"
        );
    }

    #[test]
    fn endless_output_is_bounded_and_the_program_killed() {
        let t = std::time::Instant::now();
        let e = super::run_deadline_status(
            "an endless writer",
            // A shell and its child in the group: both end.
            std::process::Command::new("sh").args(["-c", "yes picaboot-endless-output"]),
            None,
            std::time::Duration::from_secs(120),
        )
        .unwrap_err();
        let limit = crate::limits::PROGRAM_OUTPUT;
        assert!(
            matches!(e, super::ExecError::TooMuchOutput { limit: l, .. } if l == limit.bytes),
            "{e}"
        );
        assert!(
            e.to_string().contains(&format!(
                "wrote more than the program output limit of {}",
                crate::limits::human(limit.bytes)
            )),
            "{e}"
        );
        assert!(
            t.elapsed() < std::time::Duration::from_secs(60),
            "{:?}",
            t.elapsed()
        );
        let left: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains("yes picaboot-endless-output"))
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    #[test]
    fn a_program_that_ends_in_time_is_an_ordinary_run() {
        let out = run_deadline(
            "t",
            Command::new("sh").args(["-c", "cat; echo err >&2"]),
            Some(b"in\n"),
            Duration::from_secs(20),
        )
        .unwrap();
        assert_eq!(out.stdout, b"in\n");
        assert_eq!(out.stderr, b"err\n");
        let e = run_deadline(
            "t",
            Command::new("sh").args(["-c", "echo boom >&2; exit 4"]),
            None,
            Duration::from_secs(20),
        )
        .unwrap_err();
        assert!(matches!(e, ExecError::Failed { .. }), "{e}");
    }
}
