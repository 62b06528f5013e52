//! Following one install on the real box: the boot files the box fetched from serve, the
//! installer's syslog read phase by phase, each phase within its limit ([`super::Milestone::limit`]),
//! to the `done` its late command reports.

use std::net::SocketAddrV4;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::run::{Clock, ReinstallError};
use super::{Follower, Milestone, Step};
use crate::install::phases::{Event, Tracker};
use crate::serve::{ProgressLog, Served};

/// How often the follower looks at what came in.
const POLL: Duration = Duration::from_millis(500);

/// `[boot.ipxe, linux, initrd.gz]` of `host` as serve's paths.
fn boot_files(host: &str) -> [String; 3] {
    [
        format!("/{host}/netboot/boot.ipxe"),
        format!("/{host}/netboot/linux"),
        format!("/{host}/netboot/initrd.gz"),
    ]
}

/// What the follower knows when something goes wrong.
struct Seen {
    host: String,
    box_addr: SocketAddrV4,
    boot_files: [String; 3],
    fetched: [bool; 3],
}

impl Seen {
    /// Notes the box's boot files, once each, as serve answered them.
    fn served(&mut self, r: &Served, clock: &Clock) {
        if r.method != "GET" || r.status != 200 {
            return;
        }
        if let Some(i) = self.boot_files.iter().position(|f| *f == r.path) {
            if !self.fetched[i] {
                self.fetched[i] = true;
                clock.say(&format!(
                    "{} fetched {} ({} bytes)",
                    r.client, r.path, r.bytes
                ));
            }
        }
    }

    /// The failure, with the installer's last lines or, without any, where the chain broke.
    fn failure(&self, tracker: &Tracker, why: String) -> ReinstallError {
        let lines = tracker.last_lines();
        let mut msg = format!("{}: the install failed: {why}", self.host);
        if lines.is_empty() {
            msg.push_str(&if self.fetched[0] {
                format!(
                    "; the box fetched its boot script but no installer log came: does UDP reach {}?",
                    self.box_addr
                )
            } else {
                format!(
                    "; the box never fetched http://{}{}: did it boot from the network, and does its PXE chain there?",
                    self.box_addr, self.boot_files[0]
                )
            });
        } else {
            msg.push_str("\nlast installer log lines:\n  ");
            msg.push_str(&lines.join("\n  "));
        }
        ReinstallError::Failed(msg)
    }
}

/// Follows the installer's syslog (`syslog`) and its progress reports to `done`, each phase
/// within its limit; a failure or a timeout ends with the last installer lines.
pub fn follow(
    clock: &Clock,
    syslog: &mpsc::Receiver<String>,
    served: &mpsc::Receiver<Served>,
    progress: &ProgressLog,
    box_addr: SocketAddrV4,
) -> Result<(), ReinstallError> {
    let host = clock.host().to_string();
    let mut seen = Seen {
        boot_files: boot_files(&host),
        host,
        box_addr,
        fetched: [false; 3],
    };
    let mut tracker = Tracker::new(20);
    let mut follower = Follower::default();
    let start = Instant::now();
    let mut entered = Instant::now();
    let first = Milestone::ALL[0];
    clock.say(&format!(
        "{first} ... ({} at most): waiting for the box to boot the installer",
        mins(first.limit())
    ));
    // On a terminal, the running phase's elapsed time and the installer's last log line.
    let mut live = crate::progress::status(&format!("{}: {first}", seen.host));
    loop {
        while let Ok(r) = served.try_recv() {
            seen.served(&r, clock);
        }
        let mut reports: Vec<Milestone> = Vec::new();
        while let Ok(line) = syslog.try_recv() {
            live.line(&line);
            match tracker.line(&line) {
                Some(Event::Phase(p)) => reports.push(Milestone::Installer(p)),
                Some(Event::Failed(f)) => return Err(seen.failure(&tracker, f)),
                None => {}
            }
        }
        if progress.done(&seen.host) {
            reports.push(Milestone::Done);
        }
        for p in reports {
            let before = follower.phase();
            match follower.report(p, start.elapsed()) {
                Step::Entered(m) => {
                    if m != first {
                        clock.say(&format!("{before} done in {}", mins(entered.elapsed())));
                    }
                    entered = Instant::now();
                    live = crate::progress::status(&format!("{}: {m}", seen.host));
                    clock.say(&format!("{m} ... ({} at most)", mins(m.limit())));
                }
                Step::Done => {
                    clock.say(&format!("{before} done in {}", mins(entered.elapsed())));
                    clock.say(&format!(
                        "the installer reported the end of the install ({} in all); the box reboots from its disk",
                        mins(start.elapsed())
                    ));
                    return Ok(());
                }
                Step::Unexpected(what) => clock.say(&format!("note: phase {what}")),
                Step::Same | Step::TimedOut { .. } => {}
            }
        }
        if let Step::TimedOut { phase, limit } = follower.tick(start.elapsed()) {
            return Err(seen.failure(
                &tracker,
                format!("{phase} took longer than {}", mins(limit)),
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// `MmSSs`.
pub fn mins(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}m{:02}s", s / 60, s % 60)
}
