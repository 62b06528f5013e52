//! `picaboot test services`: the services layer proven on two QEMU guests (the work is
//! [`crate::services::proof::run`]; this prints its outcome).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::{ProfilesArg, TestFailed};
use crate::debian::{self, Cache};
use crate::services::proof::{self, ProofOptions};

/// Arguments of `test services`.
#[derive(Debug, clap::Args)]
pub struct ServicesConfig {
    #[command(flatten)]
    profiles: ProfilesArg,
    /// Output directory: OUT/services/ gets report.xml (JUnit), report.json and each VM's
    /// console.
    #[arg(short, long, value_name = "OUT", default_value = "out/test-services")]
    output: PathBuf,
    /// Debian mirror the VM systems are built from (`apt` = this machine's).
    #[arg(long, value_name = "URL", default_value = "apt")]
    mirror: String,
    /// Give up on each VM's boot after this many minutes.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    boot_timeout_min: u64,
    /// Cache directory (default: $XDG_CACHE_HOME/picaboot or ~/.cache/picaboot).
    #[arg(long, value_name = "DIR", env = "PICABOOT_CACHE")]
    cache: Option<PathBuf>,
    /// Keep the guests running after the checks (the reports are written first) and print
    /// how to ssh into them, until Ctrl-C.
    #[arg(long)]
    hold: bool,
}

/// Runs `test services`.
pub fn services(c: ServicesConfig) -> anyhow::Result<()> {
    crate::cleanup::on_signals();
    let mirror = if c.mirror == "apt" {
        debian::sources::system_mirror().context("reading this machine's apt mirror")?
    } else {
        c.mirror.clone()
    };
    let opts = ProofOptions {
        profiles: c.profiles.profiles.clone(),
        output: c.output.clone(),
        mirror,
        cache: c.cache.clone().unwrap_or_else(Cache::default_dir),
        boot_timeout: Duration::from_secs(c.boot_timeout_min * 60),
        hold: c.hold,
    };
    let (outcome, dir) =
        proof::run(&opts, &mut proof::registry::serve(&opts)).context("test services")?;
    for d in &outcome.differences {
        outln!("test services: TEST: {d}")?;
    }
    for p in &outcome.phases {
        outln!("test services: {} {:.1} s", p.name, p.seconds)?;
    }
    outln!("test services: total {:.1} s", outcome.seconds())?;
    for ch in &outcome.checks {
        let verdict = if ch.passed { "PASS" } else { "FAIL" };
        outln!("{verdict} {} {}", ch.name, ch.detail)?;
    }
    outln!("report: {}", dir.join("report.xml").display())?;
    let failed: Vec<&str> = outcome
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name.as_str())
        .collect();
    if outcome.passed() {
        Ok(())
    } else {
        Err(TestFailed(format!("test services: failed: {}", failed.join(", "))).into())
    }
}
