//! `picaboot vm list` and `picaboot vm create NAME [--dry-run] [--replace]`.

use std::path::PathBuf;

use anyhow::Context;

use super::ProfilesArg;
use crate::profile::Vm;
use crate::vm::create::{self, ImageOnNode};
use crate::vm::VmArgError;

/// `vm` subcommands.
#[derive(Debug, clap::Args)]
pub struct VmCmd {
    #[command(subcommand)]
    what: VmWhat,
}

impl VmCmd {
    /// Whether the output is JSON.
    pub fn json(&self) -> bool {
        match &self.what {
            VmWhat::List(l) => l.json,
            VmWhat::Create(c) => c.json,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum VmWhat {
    /// The VMs of the profiles: node, vmid, cores, memory, disks, addresses.
    List(ListConfig),
    /// Create a VM on its node over SSH (qm create with the system image imported);
    /// a VM that matches is left alone, one that differs is refused unless --replace.
    Create(CreateConfig),
}

/// Arguments of `vm list`.
#[derive(Debug, clap::Args)]
struct ListConfig {
    #[command(flatten)]
    profiles: ProfilesArg,
    /// JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Arguments of `vm create`.
#[derive(Debug, clap::Args)]
struct CreateConfig {
    /// VM (a file name in vms/, without .toml).
    vm: String,
    /// Print the exact sequence and change nothing (no connection is made).
    #[arg(long)]
    dry_run: bool,
    /// Destroy a VM that differs from its profile (its disks with it) and create it again.
    #[arg(long)]
    replace: bool,
    /// The VM's system image (raw), uploaded to the node and imported as its system disk.
    #[arg(long, value_name = "FILE")]
    image: Option<PathBuf>,
    /// ssh destination of the node (default: root@ the node's public IPv4 address).
    #[arg(long, value_name = "DEST")]
    ssh: Option<String>,
    #[command(flatten)]
    profiles: ProfilesArg,
    /// Print the plan (with --dry-run) or the outcome as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `vm`.
pub fn vm(c: VmCmd) -> anyhow::Result<()> {
    match c.what {
        VmWhat::List(l) => list(l),
        VmWhat::Create(c) => create_vm(c),
    }
}

fn list(c: ListConfig) -> anyhow::Result<()> {
    let project = crate::project::open(&c.profiles.profiles)?;
    let vms = &project.loaded.profiles.vms;
    if c.json {
        outln!("{}", serde_json::to_string_pretty(vms)?)?;
    } else {
        for v in vms.values() {
            outln!("{}", crate::vm::summary(v))?;
        }
    }
    Ok(())
}

fn create_vm(c: CreateConfig) -> anyhow::Result<()> {
    let project = crate::project::open(&c.profiles.profiles)?;
    let profiles = &project.loaded.profiles;
    let vm = profiles.vms.get(&c.vm).ok_or_else(|| VmArgError::Unknown {
        name: c.vm.clone(),
        known: profiles.vm_names(),
    })?;
    let dest = match &c.ssh {
        Some(d) => d.clone(),
        None => format!("root@{}", profiles.hosts[&vm.node].network.ipv4.addr()),
    };
    let image = match &c.image {
        Some(p) => {
            let sum = crate::debian::cache::sha256_file(p)
                .with_context(|| format!("image {}", p.display()))?;
            ImageOnNode::new(vm, &sum)
        }
        None if c.dry_run => ImageOnNode::placeholder(vm),
        None => return Err(VmArgError::NoImage(vm.name.clone()).into()),
    };
    if c.dry_run {
        return print_plan(vm, &dest, &image, c.replace, c.json);
    }
    crate::cleanup::on_signals();
    let path = c.image.clone().unwrap_or_default();
    let quiet = c.json;
    let outcome = crate::vm::apply::run(vm, &dest, &path, &image, c.replace, &mut |i, n, s| {
        if !quiet {
            eprintln!("[{i}/{n}] {}: {}", vm.node, s.why);
        }
    })
    .with_context(|| format!("vm create {}", vm.name))?;
    if c.json {
        outln!("{}", serde_json::to_string_pretty(&outcome)?)?;
    } else if outcome.steps.is_empty() {
        outln!(
            "{} (VM {}) on {} matches its profile: nothing to do",
            vm.name,
            vm.vmid,
            vm.node
        )?;
    } else {
        outln!(
            "{} (VM {}) created on {} and started",
            vm.name,
            vm.vmid,
            vm.node
        )?;
    }
    Ok(())
}

/// `--dry-run`: the reads, then what each state leads to, and the steps of a creation.
fn print_plan(
    vm: &Vm,
    dest: &str,
    image: &ImageOnNode,
    replace: bool,
    json: bool,
) -> anyhow::Result<()> {
    let reads = create::read_steps(vm);
    let judgement = if replace {
        create::Judgement::Differs {
            differences: Vec::new(),
        }
    } else {
        create::Judgement::Absent
    };
    let steps = create::apply_steps(vm, image, &judgement, replace)?;
    if json {
        let plan = serde_json::json!({ "vm": vm.name, "node": vm.node, "ssh": dest, "reads": reads, "steps": steps });
        outln!("{}", serde_json::to_string_pretty(&plan)?)?;
        return Ok(());
    }
    outln!("vm create {} (dry run: nothing is run)", vm.name)?;
    outln!("  {}", crate::vm::summary(vm))?;
    outln!("  node {}: ssh {dest}", vm.node)?;
    let all: Vec<&create::Step> = reads.iter().chain(&steps).collect();
    for (i, s) in all.iter().enumerate() {
        if i == reads.len() {
            outln!("  then: a VM that matches its profile is left alone (no step below runs); one that differs is named and refused{}; when absent:", if replace { " (--replace: destroyed first)" } else { " unless --replace" })?;
        }
        outln!("{:2}. {}", i + 1, s.command)?;
        if let Some(input) = s.stdin() {
            outln!("      stdin: {input}")?;
        }
        outln!("      {}", s.why)?;
    }
    Ok(())
}
