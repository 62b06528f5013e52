//! Cleanup that holds on every exit path: a guard removes what it owns on drop (an early `?`
//! return, a panic), and SIGINT/SIGTERM (Ctrl-C, `kill`) run the same removals before the
//! process exits (130 or 143, as a shell reports a death by those signals).
//!
//! A command that owns something costly (a container, gigabytes of VM disks in /dev/shm)
//! calls [`on_signals`] once and holds a [`Guard`] for each thing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
            Action::Container(name) => remove_container(name),
            Action::Dir(p) => {
                let _ = std::fs::remove_dir_all(p);
            }
            Action::ProcessGroup(pgid) => {
                use rustix::process::{kill_process_group, Pid, Signal};
                if let Some(pid) = i32::try_from(*pgid).ok().and_then(Pid::from_raw) {
                    let _ = kill_process_group(pid, Signal::TERM);
                    if !group_gone_within(pid, Duration::from_secs(1)) {
                        let _ = kill_process_group(pid, Signal::KILL);
                        group_gone_within(pid, Duration::from_secs(1));
                    }
                }
            }
        }
    }
}

/// Removes a container (`podman rm -f`), and again while podman still knows it: a
/// `podman run` interrupted while it started the container can leave it to appear, or to be
/// locked, a moment after the first removal. At most [`RM_TRIES`] tries.
fn remove_container(name: &str) {
    for _ in 0..RM_TRIES {
        let _ = crate::exec::run_deadline(
            "removing the container",
            Command::new("podman").args(["rm", "-f", "-t", "1", name]),
            None,
            Duration::from_secs(60),
        );
        // `podman container exists`: 0 when it exists, 1 when not.
        let exists = crate::exec::run_deadline_status(
            "looking for the container",
            Command::new("podman").args(["container", "exists", name]),
            None,
            Duration::from_secs(60),
        );
        match exists {
            Ok(o) if o.status.code() == Some(1) => return,
            Ok(_) => std::thread::sleep(Duration::from_millis(500)),
            Err(_) => return,
        }
    }
}

/// Tries of [`remove_container`].
const RM_TRIES: u32 = 10;

/// Whether the process group `pid` has no member left within `limit` (polled). A member
/// that is a zombie of a parent that does not reap it counts as left.
fn group_gone_within(pid: rustix::process::Pid, limit: Duration) -> bool {
    let t = std::time::Instant::now();
    loop {
        if rustix::process::test_kill_process_group(pid).is_err() {
            return true;
        }
        if t.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The order in which the signal path runs actions: first the programs still running (a
/// `podman run` that is creating the container would otherwise create it after its removal),
/// then the containers, then the directories.
fn rank(a: &Action) -> u8 {
    match a {
        Action::ProcessGroup(_) => 0,
        Action::Container(_) => 1,
        Action::Dir(_) => 2,
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
    /// Registers `action`, to run on drop or on SIGINT/SIGTERM. Once a signal's cleanup has
    /// begun, nothing new is owned: the action runs at once (a program just started is
    /// killed) and the calling thread waits for the process to exit.
    pub fn new(action: Action) -> Self {
        if INTERRUPTED.load(Ordering::SeqCst) && !CLEANER.with(|c| c.get()) {
            action.run();
            hold_if_interrupted();
        }
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

/// Runs every registered action now (the signal path), in the order of [`rank`].
fn run_all() {
    let mut all: Vec<Action> = std::mem::take(&mut *pending()).into_values().collect();
    all.sort_by_key(rank);
    for a in all {
        a.run();
    }
}

/// Set when SIGINT or SIGTERM arrived and the cleanup began.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Whether this thread runs the signal's cleanup (its own programs, `podman rm`, are
    /// owned as usual).
    static CLEANER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// When a signal's cleanup has begun, never returns: the handler exits the process (130 or
/// 143) once every action ran. Called before the process exits by another path (`main`'s
/// error exit, after the interrupted program failed), which would otherwise end the cleanup
/// half-way (a container being removed survives).
pub fn hold_if_interrupted() {
    if INTERRUPTED.load(Ordering::SeqCst) && !CLEANER.with(|c| c.get()) {
        loop {
            std::thread::park();
        }
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
                CLEANER.with(|c| c.set(true));
                INTERRUPTED.store(true, Ordering::SeqCst);
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
