//! `picaboot image test`: run a built image with podman and retry its declared check inside
//! the container until it passes or its timeout expires.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::spec::Image;
use crate::cleanup::{Action, Guard};
use crate::exec::{self, ExecError};

/// The deadline of one podman call that is not the check itself (run, rm, logs).
const PODMAN_DEADLINE: Duration = Duration::from_secs(5 * 60);

/// Why a check did not pass.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// podman is missing or could not start the container.
    #[error("{0}")]
    Exec(Box<ExecError>),
    /// The container ran and the check kept failing.
    #[error("{image}: check `{check}` did not pass within {timeout} s: {last}\ncontainer log (tail):\n{log}")]
    Failed {
        /// Image.
        image: String,
        /// The check command.
        check: String,
        /// Its timeout.
        timeout: u64,
        /// Last failure.
        last: String,
        /// Tail of the container's log.
        log: String,
    },
}

/// The podman arguments that work on this kind of machine (runc; explicit limits; no network).
pub fn podman_run_args(nofile: u64) -> Vec<String> {
    vec![
        "--runtime".into(),
        "runc".into(),
        "--ulimit".into(),
        format!("nofile={nofile}:{nofile}"),
        "--ulimit".into(),
        "nproc=4096:4096".into(),
        "--network".into(),
        "none".into(),
    ]
}

/// Starts `archive` (an oci-archive of `img`) with podman, runs the check, removes the
/// container. Returns the check's output.
pub fn run_check(
    img: &Image,
    archive: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<String, CheckError> {
    run_check_ref(img, &format!("oci-archive:{}", archive.display()), progress)
}

/// Like [`run_check`] for any image reference podman understands (`oci-archive:…`,
/// `localhost/name`, …).
pub fn run_check_ref(
    img: &Image,
    image_ref: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<String, CheckError> {
    let c = &img.spec.check;
    let name = format!("picaboot-check-{}-{}", img.name, std::process::id());
    let _ = exec::run_deadline(
        "podman rm",
        Command::new("podman").args(["rm", "-f", &name]),
        None,
        PODMAN_DEADLINE,
    );
    // Removed on every exit path: the end of the check, an early return, SIGINT/SIGTERM.
    let _container = Guard::new(Action::Container(name.clone()));
    progress(&format!("[{}] podman run {image_ref}", img.name));
    exec::run_deadline(
        &format!("starting {} with podman", img.name),
        Command::new("podman")
            .args(["run", "-d", "--name", &name])
            .args(podman_run_args(c.nofile))
            .arg(image_ref),
        None,
        PODMAN_DEADLINE,
    )
    .map_err(|e| CheckError::Exec(Box::new(e)))?;
    let start = Instant::now();
    let timeout = Duration::from_secs(c.timeout);
    let mut last;
    let result = loop {
        // Each try gets what is left of the check's timeout (at least a second): a check
        // that hangs is killed at the timeout, not waited for.
        let left = timeout
            .saturating_sub(start.elapsed())
            .max(Duration::from_secs(1));
        match exec::run_deadline(
            &format!("check of {}", img.name),
            Command::new("podman").args(["exec", &name, "/bin/sh", "-c", &c.run]),
            None,
            left,
        ) {
            Ok(out) => break Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
            Err(e) => last = e.to_string(),
        }
        if start.elapsed() >= timeout {
            let log = exec::run_deadline(
                "podman logs",
                Command::new("podman").args(["logs", "--tail", "30", &name]),
                None,
                PODMAN_DEADLINE,
            )
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .unwrap_or_else(|e| e.to_string());
            break Err(CheckError::Failed {
                image: img.name.clone(),
                check: c.run.clone(),
                timeout: c.timeout,
                last,
                log,
            });
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    if result.is_ok() {
        progress(&format!(
            "[{}] check passed ({:.1} s)",
            img.name,
            start.elapsed().as_secs_f64()
        ));
    }
    result
}

impl crate::exit_class::ExitClass for CheckError {
    fn exit_class(&self) -> crate::exit_class::Class {
        use crate::exit_class::Class;
        match self {
            CheckError::Failed { .. } => Class::Test,
            _ => Class::Env,
        }
    }
}
