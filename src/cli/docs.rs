//! `picaboot completions SHELL` and `picaboot man [DIR]`: shell completions and man pages,
//! both generated from the clap tree so that they never drift from the real options.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;

/// Arguments of `completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsConfig {
    /// Shell to write the completion script for (to stdout).
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `man`.
#[derive(Debug, clap::Args)]
pub struct ManConfig {
    /// Directory for the pages: `picaboot.1` and one `picaboot-CMD[-SUB].1` per subcommand.
    #[arg(default_value = "out/man")]
    pub dir: PathBuf,
}

/// Writes the completion script of `c.shell` to stdout.
pub fn completions(c: CompletionsConfig) -> anyhow::Result<()> {
    let mut cmd = super::Cli::command();
    // Generated in memory: clap_complete panics on a failed write, and a closed stdout is
    // not an error (see `out`).
    let mut script = Vec::new();
    clap_complete::generate(c.shell, &mut cmd, "picaboot", &mut script);
    super::out::write_bytes(&script)
}

/// Writes one man page per command into `c.dir`, printing each path.
pub fn man(c: ManConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&c.dir).with_context(|| format!("creating {}", c.dir.display()))?;
    let mut cmd = super::Cli::command();
    cmd.build();
    for p in write_pages(&cmd, "picaboot", &c.dir)? {
        outln!("{}", p.display())?;
    }
    Ok(())
}

/// Writes the page of `cmd` (named `name`) and of every subcommand below it.
fn write_pages(cmd: &clap::Command, name: &str, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut bytes = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .title(name.to_string())
        .render(&mut bytes)
        .with_context(|| format!("rendering the man page of {name}"))?;
    let path = dir.join(format!("{name}.1"));
    crate::output::write_file(&path, &bytes, 0o644)
        .with_context(|| format!("writing {}", path.display()))?;
    written.push(path);
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        written.extend(write_pages(
            sub,
            &format!("{name}-{}", sub.get_name()),
            dir,
        )?);
    }
    Ok(written)
}
