//! `picaboot test vm NAME`: the VM system proof in QEMU (the work is
//! [`crate::vm::test_vm::run`]; this prints its outcome).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::{ProfilesArg, TestFailed};
use crate::debian::{self, Cache};
use crate::vm::test_vm::{self, TestVmOptions};

/// Arguments of `test vm`.
#[derive(Debug, clap::Args)]
pub struct VmConfig {
    /// VM (a file name in vms/, without .toml).
    name: String,
    #[command(flatten)]
    profiles: ProfilesArg,
    /// Output directory: OUT/NAME/ gets report.xml (JUnit), report.json, console.log.
    #[arg(short, long, value_name = "OUT", default_value = "out/test-vm")]
    output: PathBuf,
    /// Debian mirror to build from (`apt` = this machine's, read from its apt sources).
    #[arg(long, value_name = "URL", default_value = "apt")]
    mirror: String,
    /// VM memory in MiB.
    #[arg(long, default_value_t = 1024)]
    memory: u32,
    /// Give up on the boot after this many minutes.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..))]
    boot_timeout_min: u64,
    /// Cache directory (default: $XDG_CACHE_HOME/picaboot or ~/.cache/picaboot).
    #[arg(long, value_name = "DIR", env = "PICABOOT_CACHE")]
    cache: Option<PathBuf>,
    /// Boot without the data disk: the self-test must fail its data-disk checks (a proof
    /// that they can fail).
    #[arg(long)]
    without_data_disk: bool,
}

/// Runs `test vm`.
pub fn vm(c: VmConfig) -> anyhow::Result<()> {
    crate::cleanup::on_signals();
    let mirror = if c.mirror == "apt" {
        debian::sources::system_mirror().context("reading this machine's apt mirror")?
    } else {
        c.mirror.clone()
    };
    let opts = TestVmOptions {
        profiles: c.profiles.profiles.clone(),
        name: c.name.clone(),
        output: c.output.clone(),
        mirror,
        memory_mib: c.memory,
        boot_timeout: Duration::from_secs(c.boot_timeout_min * 60),
        cache: c.cache.clone().unwrap_or_else(Cache::default_dir),
        data_disk: !c.without_data_disk,
    };
    let (outcome, dir) = test_vm::run(&opts).with_context(|| format!("test vm {}", c.name))?;
    let report = outcome.report();
    let img = &outcome.image;
    let how = match (img.cached, img.base_cached) {
        (true, _) => "reused from the cache",
        (false, true) => "built; Debian base reused",
        (false, false) => "built",
    };
    outln!(
        "test vm {}: image {} ({how}, {:.1} s), {}",
        c.name,
        img.disk.display(),
        img.seconds,
        outcome.accel
    )?;
    outln!(
        "test vm {}: TEST: a throwaway ssh key was added to root's keys (the profile's are kept)",
        c.name
    )?;
    outln!(
        "test vm {}: boot to self-test end {:.1} s",
        c.name,
        outcome.boot_seconds
    )?;
    for ch in &report.checks {
        let verdict = if ch.passed { "PASS" } else { "FAIL" };
        outln!("{verdict} {} {}", ch.name, ch.detail)?;
    }
    outln!("report: {}", dir.join("report.xml").display())?;
    let failed: Vec<String> = report.failures().iter().map(|s| s.name.clone()).collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(TestFailed(format!("test vm {}: failed: {}", c.name, failed.join(", "))).into())
    }
}
