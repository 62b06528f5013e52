//! What the user sees while picaboot works: the one place that reports progress.
//!
//! Three modes, chosen once per process by [`init`]:
//! - [`Mode::Draw`]: stderr is a terminal: live `indicatif` bars (bytes, bytes/s and ETA for
//!   transfers), spinners (the last output line of a running step), phases with elapsed time.
//! - [`Mode::Log`]: stderr is not a terminal (CI logs, pipes, tests): one plain line per event
//!   (a transfer's start and end, a step's start and end), never a redraw.
//! - [`Mode::Quiet`]: `-q` or `--json`: nothing at all (errors are still reported by `main`).
//!
//! The API is small on purpose, so that any stage can report without knowing the mode:
//! ```no_run
//! use picaboot::progress;
//! progress::init(false);
//! progress::event("resolving the installer");
//! let t = progress::transfer("linux", Some(8 << 20));
//! t.inc(4 << 20);
//! t.finish();
//! let s = progress::spinner("[tx-apache] step 2/3: RUN apt-get install apache2");
//! s.line("Setting up apache2 (2.4.62-1) ...");
//! s.finish("[tx-apache] step 2/3 done");
//! let p = progress::phase("partitioning");
//! p.finish(true);
//! ```
//! Until [`init`] is called the mode is [`Mode::Log`], so library users and tests get plain
//! lines on stderr.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Nothing (`-q`, `--json`).
    Quiet,
    /// One plain line per event on stderr.
    Log,
    /// Live bars and spinners on the terminal.
    Draw,
}

static MODE: AtomicU8 = AtomicU8::new(1);
static MULTI: OnceLock<MultiProgress> = OnceLock::new();

/// Chooses the mode for the process: quiet when asked, live drawing when stderr is a terminal,
/// plain lines otherwise. `PICABOOT_PROGRESS=log|draw|quiet` overrides the detection.
pub fn init(quiet: bool) {
    use std::io::IsTerminal;
    let mode = if quiet {
        Mode::Quiet
    } else {
        match std::env::var("PICABOOT_PROGRESS").as_deref() {
            Ok("quiet") => Mode::Quiet,
            Ok("log") => Mode::Log,
            Ok("draw") => Mode::Draw,
            _ if std::io::stderr().is_terminal() => Mode::Draw,
            _ => Mode::Log,
        }
    };
    set_mode(mode);
}

/// Sets the mode explicitly.
pub fn set_mode(mode: Mode) {
    MODE.store(
        match mode {
            Mode::Quiet => 0,
            Mode::Log => 1,
            Mode::Draw => 2,
        },
        Ordering::Relaxed,
    );
}

/// The current mode.
pub fn mode() -> Mode {
    match MODE.load(Ordering::Relaxed) {
        0 => Mode::Quiet,
        2 => Mode::Draw,
        _ => Mode::Log,
    }
}

fn multi() -> &'static MultiProgress {
    MULTI.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// Writes one line to stderr, never panicking on a closed pipe.
fn log_line(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "picaboot: {line}");
}

/// Reports one event (`picaboot: MSG` on its own line; above the live bars when drawing).
pub fn event(msg: &str) {
    match mode() {
        Mode::Quiet => {}
        Mode::Log => log_line(msg),
        Mode::Draw => {
            let _ = multi().println(format!("picaboot: {msg}"));
        }
    }
}

/// Writes `line` as it is (no prefix) to stderr, above the live bars when drawing; for
/// commands that print their own timestamped lines. Printed in every mode but quiet.
pub fn println(line: &str) {
    match mode() {
        Mode::Quiet => {}
        Mode::Log => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
        Mode::Draw => {
            let _ = multi().println(line);
        }
    }
}

/// A live status line for a step the caller reports with its own lines ([`println`]): a
/// spinner with `label`, the elapsed time and the last detail when drawing; nothing at all
/// otherwise (no start line: the caller said it).
pub fn status(label: &str) -> Spinner {
    let bar = (mode() == Mode::Draw).then(|| {
        let b = multi().add(
            ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {prefix} [{elapsed}] {wide_msg}")
                    .expect("valid template"),
            ),
        );
        b.set_prefix(label.to_string());
        b.enable_steady_tick(Duration::from_millis(120));
        b
    });
    Spinner {
        label: label.to_string(),
        bar,
    }
}

/// Human size: `12.3 MB`.
fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Transfers at least this large also get a start line when logging.
const LOG_START_FROM: u64 = 16 << 20;

/// A transfer of bytes (a download, an upload): bytes, bytes/s and ETA when drawing; a start
/// and an end line when logging. Dropping it without [`Transfer::finish`] clears the bar
/// silently (the error that caused it is reported elsewhere).
#[derive(Debug)]
pub struct Transfer {
    label: String,
    bar: Option<ProgressBar>,
    start: Instant,
    done: std::sync::atomic::AtomicU64,
}

/// Starts a transfer of `total` bytes (when known).
pub fn transfer(label: &str, total: Option<u64>) -> Transfer {
    let bar = match mode() {
        Mode::Draw => {
            let b = match total {
                Some(t) => ProgressBar::new(t).with_style(
                    ProgressStyle::with_template(
                        "{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                    )
                    .expect("valid template"),
                ),
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{spinner} {msg} {bytes} {bytes_per_sec}")
                        .expect("valid template"),
                ),
            };
            let b = multi().add(b);
            b.set_message(label.to_string());
            b.enable_steady_tick(Duration::from_millis(200));
            Some(b)
        }
        Mode::Log => {
            // Small transfers get their end line only.
            if total.is_none_or(|t| t >= LOG_START_FROM) {
                log_line(&format!(
                    "{label}: started{}",
                    total.map(|t| format!(" ({})", mb(t))).unwrap_or_default()
                ));
            }
            None
        }
        Mode::Quiet => None,
    };
    Transfer {
        label: label.to_string(),
        bar,
        start: Instant::now(),
        done: Default::default(),
    }
}

impl Transfer {
    /// `n` more bytes went through.
    pub fn inc(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// Bytes so far.
    pub fn bytes(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// The transfer completed: one summary line (size, time, rate).
    pub fn finish(mut self) {
        let secs = self.start.elapsed().as_secs_f64();
        let done = self.bytes();
        let line = format!(
            "{}: {} in {secs:.1} s ({}/s)",
            self.label,
            mb(done),
            mb((done as f64 / secs.max(1e-3)) as u64)
        );
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
            multi().remove(&b);
        }
        event(&line);
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
            multi().remove(&b);
        }
    }
}

/// A running step whose output scrolls by: a spinner showing its label and the last line it
/// printed when drawing; a start line when logging (its output lines are not logged).
#[derive(Debug)]
pub struct Spinner {
    label: String,
    bar: Option<ProgressBar>,
}

/// Starts a spinner for `label`.
pub fn spinner(label: &str) -> Spinner {
    if mode() == Mode::Log {
        log_line(label);
    }
    status(label)
}

impl Spinner {
    /// The step printed `line` (shown, trimmed, as the spinner's message when drawing).
    pub fn line(&self, line: &str) {
        if let Some(b) = &self.bar {
            let l = line.trim();
            if !l.is_empty() {
                b.set_message(l.chars().take(200).collect::<String>());
            }
        }
    }

    /// The step ended: its spinner goes and `msg` is reported as an event.
    pub fn finish(mut self, msg: &str) {
        self.clear();
        event(msg);
    }

    fn clear(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
            multi().remove(&b);
        }
    }

    /// The label given at the start.
    pub fn label(&self) -> &str {
        &self.label
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.clear();
    }
}

/// A named phase of a long job (an install's partitioning, base system, …): a spinner with the
/// elapsed time while it runs, then `NAME: ok|FAILED (T s)`.
#[derive(Debug)]
pub struct Phase {
    name: String,
    start: Instant,
    spinner: Spinner,
}

/// Starts phase `name`.
pub fn phase(name: &str) -> Phase {
    Phase {
        name: name.to_string(),
        start: Instant::now(),
        spinner: spinner(&format!("phase {name}")),
    }
}

impl Phase {
    /// Shows a detail of the running phase (the last console line, a stage message).
    pub fn detail(&self, line: &str) {
        self.spinner.line(line);
    }

    /// The phase ended.
    pub fn finish(self, ok: bool) {
        let secs = self.start.elapsed().as_secs_f64();
        let msg = format!(
            "phase {}: {} ({secs:.0} s)",
            self.name,
            if ok { "ok" } else { "FAILED" }
        );
        self.spinner.finish(&msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_mode_draws_nothing_and_counts_bytes() {
        set_mode(Mode::Quiet);
        let t = transfer("x", Some(10));
        assert!(t.bar.is_none());
        t.inc(4);
        t.inc(6);
        assert_eq!(t.bytes(), 10);
        t.finish();
        let s = spinner("step");
        assert!(s.bar.is_none());
        s.line("output");
        s.finish("done");
        phase("p").finish(true);
        let st = status("alice: partitioning");
        assert!(st.bar.is_none());
        st.line("partman: creating md0");
        set_mode(Mode::Log);
        assert!(status("logged by its caller").bar.is_none());
    }
}
