//! Cleanup that holds on every exit path: a guard removes what it owns on drop (an early `?`
//! return, a panic), and SIGINT/SIGTERM (Ctrl-C, `kill`) run the same removals before the
//! process exits (130 or 143, as a shell reports a death by those signals).
//!
//! A command that owns something costly (a container, gigabytes of VM disks in /dev/shm)
//! calls [`on_signals`] once and holds a [`Guard`] for each thing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

/// Something to remove.
#[derive(Debug, Clone)]
pub enum Action {
    /// A podman container, removed with `podman rm -f`.
    Container(String),
    /// A directory tree.
    Dir(PathBuf),
    /// A process group still running (an external program under a deadline): SIGTERM, then
    /// SIGKILL a second later.
    ProcessGroup(u32),
}

impl Action {
    fn run(&self) {
        match self {
            Action::Container(name) => {
                let _ = crate::exec::run_deadline(
                    "removing the container",
                    Command::new("podman").args(["rm", "-f", "-t", "1", name]),
                    None,
                    Duration::from_secs(60),
                );
            }
            Action::Dir(p) => {
                let _ = std::fs::remove_dir_all(p);
            }
            Action::ProcessGroup(pgid) => {
                use rustix::process::{kill_process_group, Pid, Signal};
                if let Some(pid) = i32::try_from(*pgid).ok().and_then(Pid::from_raw) {
                    let _ = kill_process_group(pid, Signal::TERM);
                    std::thread::sleep(Duration::from_secs(1));
                    let _ = kill_process_group(pid, Signal::KILL);
                }
            }
        }
    }
}

static PENDING: Mutex<BTreeMap<u64, Action>> = Mutex::new(BTreeMap::new());
static NEXT: AtomicU64 = AtomicU64::new(0);

fn pending() -> std::sync::MutexGuard<'static, BTreeMap<u64, Action>> {
    PENDING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Owns one [`Action`]: runs it on drop (unless [`Guard::disarm`]ed), and a signal runs it
/// while the guard lives.
#[derive(Debug)]
pub struct Guard {
    id: u64,
}

impl Guard {
    /// Registers `action`, to run on drop or on SIGINT/SIGTERM.
    pub fn new(action: Action) -> Self {
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        pending().insert(id, action);
        Guard { id }
    }

    /// Keeps the thing (e.g. `--keep-disks`): neither drop nor a signal removes it.
    pub fn disarm(self) {
        pending().remove(&self.id);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let action = pending().remove(&self.id);
        if let Some(a) = action {
            a.run();
        }
    }
}

/// Runs every registered action now (the signal path).
fn run_all() {
    let all: Vec<Action> = std::mem::take(&mut *pending()).into_values().collect();
    for a in all {
        a.run();
    }
}

/// Installs the SIGINT/SIGTERM handler (once per process): on either signal, every live
/// guard's action runs and the process exits 130 (SIGINT) or 143 (SIGTERM). Returns once the
/// handler is in place.
pub fn on_signals() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                let _ = tx.send(());
                return;
            };
            rt.block_on(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut int), Ok(mut term)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) else {
                    let _ = tx.send(());
                    return;
                };
                let _ = tx.send(());
                let (name, code) = tokio::select! {
                    _ = int.recv() => ("SIGINT", 130),
                    _ = term.recv() => ("SIGTERM", 143),
                };
                eprintln!("picaboot: {name}: cleaning up");
                run_all();
                std::process::exit(code);
            });
        });
        let _ = rx.recv_timeout(Duration::from_secs(5));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guard_removes_its_dir_on_drop_and_a_disarmed_one_keeps_it() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        let b = d.path().join("b");
        std::fs::create_dir_all(a.join("x")).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        {
            let _g = Guard::new(Action::Dir(a.clone()));
            Guard::new(Action::Dir(b.clone())).disarm();
        }
        assert!(!a.exists());
        assert!(b.exists());
    }
}
