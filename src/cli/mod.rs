//! Command line: the clap derive tree (`Cli` -> `Cmd` -> `XxxConfig`) and one handler per
//! command. `main` only parses, calls [`run`], and maps errors to exit codes with
//! [`exit_code`].

#[macro_use]
pub mod out;
pub use out::print_error;

mod backup;
mod check;
mod cluster;
mod diff;
mod docs;
pub mod exit;
mod image;
pub mod json;
mod netboot;
mod power;
mod push;
mod reinstall;
mod render;
mod serve;
mod services;
mod test;
mod test_services;
mod test_vm;
mod vm;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Exit code: bad input (profiles, arguments).
pub const EXIT_USER: i32 = 1;
/// Exit code: the environment is missing something (a tool, the network).
pub const EXIT_ENV: i32 = 2;
/// Exit code: a test ran and failed.
pub const EXIT_TEST: i32 = 3;

/// picaboot: render, netboot, build and prove in QEMU the Picasoft servers.
#[derive(Debug, Parser)]
#[command(name = "picaboot", version, about, propagate_version = true)]
pub struct Cli {
    /// More log (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// No progress output (bars, spinners, step lines); results and errors still print.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// The command.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// Options shared by every command that reads profiles.
#[derive(Debug, Clone, clap::Args)]
pub struct ProfilesArg {
    /// Profiles directory (site.toml, hardware/, hosts/, clusters/).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "profiles",
        env = "PICABOOT_PROFILES"
    )]
    pub profiles: PathBuf,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Validate every profile; print `file:line: field: reason` per problem.
    Check(check::CheckConfig),
    /// Render a host's files (preseed, rootfs/…, manifest.json) into OUT/HOST/.
    Render(render::RenderConfig),
    /// Serve a netboot tree over HTTP (GET/HEAD, ranges) with an install progress endpoint.
    Serve(serve::ServeConfig),
    /// Build OUT/HOST/netboot/: verified installer, initrd with the host's files, boot entries.
    Netboot(netboot::NetbootConfig),
    /// Container images: build, dockerfile, list, test.
    Image(image::ImageCmd),
    /// Prove a host in QEMU: `test install HOST` (install, first boot, degraded boots, self-test).
    Test(test::TestCmd),
    /// Print the shell completion script (bash, zsh, fish, …) on stdout.
    Completions(docs::CompletionsConfig),
    /// Write man pages (one per command) into DIR.
    Man(docs::ManConfig),
    /// Power a box through Intel AMT: status, on, off, reset, cycle; --pxe-once for one PXE boot.
    Power(power::PowerConfig),
    /// Reinstall a box end to end (checks and confirmation; see README).
    Reinstall(reinstall::ReinstallConfig),
    /// Compare a host's rendered files with the live host over SSH (exit 3 on drift).
    Diff(diff::DiffConfig),
    /// Proxmox clusters: `cluster form NAME` (pvecm create, join, quorum settings, read back).
    Cluster(cluster::ClusterCmd),
    /// The VMs on the cluster: `vm list`, `vm create NAME` (qm over SSH, idempotent).
    Vm(vm::VmCmd),
    /// The services layer (GlusterFS /DATA, Docker Swarm, Traefik, the stack): `services
    /// render -o DIR`, `services form --dry-run`.
    Services(services::ServicesCmd),
    /// Backups: `backup form NAME` (backup storage, vzdump job, each node's pull of the other).
    Backup(backup::BackupCmd),
}

impl Cli {
    /// Whether the command prints data as JSON (then no progress is shown either).
    pub fn json(&self) -> bool {
        match &self.cmd {
            Cmd::Image(i) => match &i.cmd {
                image::ImageSub::Build(b) => b.opts.json,
                image::ImageSub::Test(t) => t.opts.json,
                image::ImageSub::List(l) => l.json,
                image::ImageSub::Push(p) => p.json,
                image::ImageSub::Dockerfile(d) => d.json,
                image::ImageSub::Pack(p) => p.json,
            },
            Cmd::Netboot(n) => n.json,
            Cmd::Check(c) => c.json,
            Cmd::Render(r) => r.json,
            Cmd::Serve(s) => s.json,
            Cmd::Test(t) => match &t.what {
                test::TestWhat::Install(i) => i.json,
                test::TestWhat::Vm(_) | test::TestWhat::Services(_) => false,
            },
            Cmd::Power(p) => p.json,
            Cmd::Diff(d) => d.json,
            Cmd::Cluster(c) => c.json(),
            Cmd::Vm(v) => v.json(),
            Cmd::Services(_) => false,
            Cmd::Backup(c) => c.json(),
            Cmd::Completions(_) | Cmd::Man(_) | Cmd::Reinstall(_) => false,
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Check(c) => check::check(c),
        Cmd::Render(c) => render::render(c),
        Cmd::Serve(c) => serve::serve(c),
        Cmd::Netboot(c) => netboot::netboot(c),
        Cmd::Image(c) => image::image(c),
        Cmd::Test(c) => test::test(c),
        Cmd::Completions(c) => docs::completions(c),
        Cmd::Man(c) => docs::man(c),
        Cmd::Power(c) => power::power(c),
        Cmd::Reinstall(c) => reinstall::reinstall(c),
        Cmd::Diff(c) => diff::diff(c),
        Cmd::Cluster(c) => cluster::cluster(c),
        Cmd::Vm(c) => vm::vm(c),
        Cmd::Services(c) => services::services(c),
        Cmd::Backup(c) => backup::backup(c),
    }
}

/// A test that ran and failed (exit code 3).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TestFailed(pub String);

/// A user error detected by the CLI itself (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Maps an error to the exit code of the command contract (see [`exit`]).
pub fn exit_code(err: &anyhow::Error) -> i32 {
    exit::code(exit::classify(err))
}

/// Maps a command-line parse error: `--help` and `--version` are not errors (0), every usage
/// error is bad input (1), never clap's own 2, which the contract gives the environment. A
/// missing subcommand prints the help, but is a usage error all the same.
pub fn clap_exit_code(err: &clap::Error) -> i32 {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
        _ => EXIT_USER,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
