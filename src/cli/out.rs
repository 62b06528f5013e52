//! Standard output, in one place: every command prints its results through [`write`] (by way
//! of the `outln!` and `out!` macros).
//!
//! A reader that closes the pipe early (`picaboot check | head -1`) is not an error of the
//! command: the write fails with [`StdoutClosed`], which the exit contract classes as a quiet
//! exit 0 with nothing on stderr (as ripgrep and coreutils' `yes` under `head` behave). Any
//! other write error is the environment's (exit 2), never "internal error".

use std::io::Write;

/// Standard output was closed by its reader (EPIPE): the command stops quietly.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed by its reader")]
pub struct StdoutClosed;

/// Writes `args` to stdout and flushes; a closed pipe is [`StdoutClosed`], any other failure
/// an I/O error with context.
pub fn write(args: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    classify(out.write_fmt(args).and_then(|()| out.flush()))
}

/// Writes raw bytes to stdout and flushes, as [`write`].
pub fn write_bytes(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    classify(out.write_all(bytes).and_then(|()| out.flush()))
}

/// Maps the result of a write to stdout: BrokenPipe is [`StdoutClosed`].
pub fn classify(r: std::io::Result<()>) -> anyhow::Result<()> {
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::from(e).context("writing to standard output")),
    }
}

/// Whether `err` is (caused by) a closed stdout.
pub fn is_closed(err: &anyhow::Error) -> bool {
    err.chain().any(|c| c.is::<StdoutClosed>())
}

/// `println!` through [`write`]: evaluates to `anyhow::Result<()>`.
macro_rules! outln {
    () => { $crate::cli::out::write(format_args!("\n")) };
    ($($arg:tt)*) => {
        $crate::cli::out::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` through [`write`]: evaluates to `anyhow::Result<()>`.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::out::write(format_args!($($arg)*)) };
}

/// Prints an error the way every command does: profile problems one per line, anything else
/// with its context chain.
pub fn print_error(err: &anyhow::Error) {
    if let Some(crate::profile::ProfileError::Invalid(d)) = err
        .chain()
        .find_map(|c| c.downcast_ref::<crate::profile::ProfileError>())
    {
        eprintln!("{d}");
        let n = d.0.len();
        eprintln!(
            "picaboot: {n} problem{} in the profiles; nothing was written",
            if n == 1 { "" } else { "s" }
        );
    } else if let Some(crate::image::SpecError::Invalid(d)) = err
        .chain()
        .find_map(|c| c.downcast_ref::<crate::image::SpecError>())
    {
        eprintln!("{d}");
        eprintln!("picaboot: {} problem(s) in the image specs", d.0.len());
    } else if super::exit::classify(err) == super::exit::Class::Bug {
        eprintln!("picaboot: internal error (a bug in picaboot, please report it): {err:#}");
    } else {
        eprintln!("picaboot: error: {err:#}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_pipe_is_stdout_closed_and_other_errors_are_io() {
        let e = classify(Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))).unwrap_err();
        assert!(is_closed(&e));
        let e = classify(Err(std::io::Error::other("disk full"))).unwrap_err();
        assert!(!is_closed(&e));
        assert!(e.chain().any(|c| c.is::<std::io::Error>()));
    }
}
