//! `picaboot test services`: the services VMs (pica01, pica02) booted as QEMU guests from the
//! images `picaboot test vm` proves, linked by their public addresses only; the layer applied
//! by the same plan and ssh runner as `services form` (a second run must change nothing); then
//! named checks: the replicated volume, the swarm's roles and encrypted overlay, the stack
//! pulled from the test registry and answering on every node, the firewall, the mount order
//! after a reboot, and a guest's power cut.
//!
//! What differs from production is listed in the report ([`TEST_DIFFERENCES`]).

pub mod checks;
pub mod guests;
pub mod registry;
pub mod stack;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::exec::Input;
use crate::profile::services::Services;
use crate::qemu::CheckResult;

/// What the test does that production does not, said in every report.
pub const TEST_DIFFERENCES: &[&str] = &[
    "the VMs' public NICs share one QEMU socket link, and a systemd-networkd drop-in routes \
     their public /24 on it (production: the ISP's router between alice and bob)",
    "ssh reaches each VM through a port QEMU forwards to its private address, with a throwaway \
     key added to root's keys",
    "the registry is Debian's docker-registry on this machine's loopback with the tx-registry \
     configuration, a throwaway CA (trusted in /etc/docker/certs.d) and a throwaway htpasswd \
     user; the VMs reach it at 10.0.42.2:5000 through QEMU (production: the admin VM, through \
     alice's public :5000)",
    "the harness runs `docker login` on every VM and starts pulling the stack's images there in \
     the background while `services form` runs (production: the admin logs in once on the first \
     manager, and each node pulls on demand)",
    "the harness creates the swarm secrets from random bytes in the first manager after \
     `services form` stopped asking for them (production: the admin does, once)",
    "the stack under test replaces the shipped [[services]] (src/services/proof/stack.toml); \
     Traefik's image cannot be pulled here (no registry reachable), so its task never runs",
];

/// What `test services` is asked.
#[derive(Debug, Clone)]
pub struct ProofOptions {
    /// Profiles directory.
    pub profiles: PathBuf,
    /// Output directory (the reports and consoles go to `OUT/services/`).
    pub output: PathBuf,
    /// Mirror the VM systems are built from (this machine's, under test).
    pub mirror: String,
    /// Cache directory.
    pub cache: PathBuf,
    /// Limit of each guest's boot to its self-test's end.
    pub boot_timeout: Duration,
    /// Keep the guests running after the checks, until interrupted (to look inside).
    pub hold: bool,
}

/// Why `test services` could not run (a failed check is not an error: see the outcome).
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The profiles do not check.
    #[error(transparent)]
    Profiles(#[from] crate::profile::ProfileError),
    /// A VM system could not be built or booted.
    #[error(transparent)]
    Vm(#[from] crate::vm::VmError),
    /// A program failed.
    #[error(transparent)]
    Exec(#[from] crate::exec::ExecError),
    /// The services layer could not be rendered.
    #[error(transparent)]
    Services(#[from] super::ServicesError),
    /// A file operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was done.
        what: &'static str,
        /// On what.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The profiles cannot be proven this way (a services VM without a private NIC).
    #[error("{0}")]
    Shape(String),
    /// The test registry could not be served or filled.
    #[error("test registry: {0}")]
    Registry(String),
}

impl ProofError {
    /// A closure making an [`ProofError::Io`] for `what` on `path`.
    pub fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ProofError {
        let path = path.to_path_buf();
        move |source| ProofError::Io { what, path, source }
    }
}

impl crate::exit_class::ExitClass for ProofError {
    fn exit_class(&self) -> crate::exit_class::Class {
        use crate::exit_class::Class;
        match self {
            ProofError::Profiles(e) => e.exit_class(),
            ProofError::Vm(e) => e.exit_class(),
            ProofError::Exec(e) => e.exit_class(),
            ProofError::Services(e) => e.exit_class(),
            ProofError::Shape(_) => Class::User,
            ProofError::Io { .. } | ProofError::Registry(_) => Class::Env,
        }
    }
}

/// One timed phase.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PhaseTime {
    /// Its name.
    pub name: String,
    /// Seconds.
    pub seconds: f64,
}

/// What the run found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ProofOutcome {
    /// Phases in order, timed.
    pub phases: Vec<PhaseTime>,
    /// Every check.
    pub checks: Vec<CheckResult>,
    /// What the test does that production does not.
    pub differences: Vec<String>,
}

impl ProofOutcome {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.passed)
    }

    /// Total seconds.
    pub fn seconds(&self) -> f64 {
        self.phases.iter().map(|p| p.seconds).sum()
    }

    fn phase(&mut self, name: &str, since: &mut Instant) {
        let seconds = since.elapsed().as_secs_f64();
        crate::progress::event(&format!("test services: {name} done in {seconds:.1} s"));
        self.phases.push(PhaseTime {
            name: name.into(),
            seconds,
        });
        *since = Instant::now();
    }
}

/// The registry the guests pull from, as the harness set it up.
pub struct ServedRegistry {
    /// Port on 127.0.0.1.
    pub port: u16,
    /// The CA that signed its certificate (PEM).
    pub ca_pem: String,
    /// htpasswd user.
    pub user: String,
    /// Its password (never printed).
    pub password: crate::secret::Secret,
    /// `image name -> manifest digest` pushed.
    pub digests: std::collections::BTreeMap<String, String>,
    /// What keeps it running (dropped: stopped).
    pub running: Vec<Box<dyn std::any::Any>>,
}

/// Runs the whole proof; the reports are in the returned directory.
pub fn run(
    o: &ProofOptions,
    registry: &mut dyn FnMut(&Path, &Services) -> Result<ServedRegistry, ProofError>,
) -> Result<(ProofOutcome, PathBuf), ProofError> {
    let work = tempfile::Builder::new()
        .prefix("picaboot-test-services-")
        .tempdir()
        .map_err(ProofError::io(
            "create a temporary directory in",
            &std::env::temp_dir(),
        ))?;
    // On SIGINT/SIGTERM too: the overlays and disks are gigabytes.
    let _remove_work =
        crate::cleanup::Guard::new(crate::cleanup::Action::Dir(work.path().to_path_buf()));
    let out = o.output.join("services");
    std::fs::create_dir_all(&out).map_err(ProofError::io("create", &out))?;
    let mut outcome = ProofOutcome {
        differences: TEST_DIFFERENCES.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let mut since = Instant::now();
    let dir = stack::with_test_stack(&o.profiles, work.path())?;
    let project = crate::project::open(&dir)?;
    let profiles = &project.loaded.profiles;
    let s = profiles
        .services
        .clone()
        .ok_or_else(|| ProofError::Shape(format!("{}: no services.toml", o.profiles.display())))?;
    let (key, pubkey) = crate::vm::proof::test_key(&o.cache, "declared")?;
    let mut systems = Vec::new();
    let mut images = Vec::new();
    for m in &s.swarm.members {
        let vm = &profiles.vms[&m.vm];
        let system = crate::vm::from_profile::system_of(
            vm,
            &profiles.hosts[&vm.node],
            Some(&o.mirror),
            std::slice::from_ref(&pubkey),
        );
        images.push(crate::vm::image::build(&system, &o.mirror, &o.cache)?);
        systems.push(system);
    }
    outcome.phase("images", &mut since);
    let reg = registry(work.path(), &s)?;
    outcome.phase("registry", &mut since);
    let plans: Vec<guests::GuestPlan> = s
        .swarm
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| guests::GuestPlan {
            system: &systems[i],
            image: &images[i],
            address: m.address,
        })
        .collect();
    let (mut g, boot) = guests::start(
        &plans,
        &key,
        work.path(),
        &out,
        reg.port,
        stack::WEB_PORT,
        o.boot_timeout,
    )?;
    let booted = boot.iter().all(|c| c.passed);
    outcome.checks.extend(boot);
    outcome.phase("boot", &mut since);
    if booted {
        prove(&mut g, &s, &reg, &systems, &mut outcome, &mut since);
    }
    write_reports(&outcome, &out)?;
    if o.hold {
        hold(&g, &outcome);
    }
    Ok((outcome, out))
}

/// Everything after the boot: the harness's own setup, `services form` twice, the checks.
fn prove(
    g: &mut guests::Guests,
    s: &Services,
    reg: &ServedRegistry,
    systems: &[crate::vm::system::VmSystem],
    outcome: &mut ProofOutcome,
    since: &mut Instant,
) {
    let prepared = prepare(g, s, reg, systems);
    outcome.checks.push(prepared.clone());
    outcome.phase("prepare", since);
    if !prepared.passed {
        return;
    }
    // One plan for every `services form` run: the profiles do not change between them.
    let steps = match super::plan::plan(s) {
        Ok(steps) => steps,
        Err(e) => {
            outcome.checks.push(CheckResult {
                name: "services-form".into(),
                passed: false,
                detail: e.to_string(),
            });
            return;
        }
    };
    if !super::render::secrets(s).is_empty() {
        let stopped = apply_until_secret(g, &steps);
        let ok = stopped.passed;
        outcome.checks.push(stopped);
        if !ok {
            return;
        }
        outcome.checks.push(create_secrets(g, s));
    }
    let applied = apply(g, &steps, "services-form");
    let ok = applied.passed;
    outcome.checks.push(applied);
    outcome.phase("services form", since);
    if !ok {
        return;
    }
    let service = format!("{}_web", super::render::STACK);
    outcome.checks.push(checks::replicated(g, s));
    outcome.checks.push(checks::swarm_roles(g, s));
    let digest = reg.digests.get("tx-apache").map(String::as_str);
    outcome
        .checks
        .push(checks::stack_served(g, s, &service, digest));
    let backup = format!("{}_mysql-backup", super::render::STACK);
    outcome
        .checks
        .push(checks::backup_kept(g, s, "mysql-backup", &backup));
    outcome.phase("volume, swarm, stack and backup checks", since);
    if g.list.len() > 1 {
        let stranger = stranger_address(s);
        outcome.checks.push(checks::firewall(g, 1, 0, stranger));
    }
    outcome.checks.push(apply(g, &steps, "services-form-again"));
    outcome.phase("firewall and second services form", since);
    if g.list.len() > 1 {
        outcome.checks.push(checks::mount_before_docker(g, 1, s));
        outcome.phase("reboot", since);
        outcome
            .checks
            .push(checks::survives_kill(g, 1, s, &service));
        outcome.phase("power cut", since);
    }
}

/// Waits for SIGINT or SIGTERM (whose handler stops the guests and removes the work
/// directory), after saying how to reach the guests.
fn hold(g: &guests::Guests, outcome: &ProofOutcome) -> ! {
    for c in outcome.checks.iter().filter(|c| !c.passed) {
        crate::progress::event(&format!("test services: FAIL {} {}", c.name, c.detail));
    }
    for guest in &g.list {
        crate::progress::event(&format!(
            "test services: holding {}: ssh -F {} root@{}",
            guest.name,
            g.ssh_config.display(),
            guest.address
        ));
    }
    crate::progress::event("test services: Ctrl-C stops the guests and removes their disks");
    loop {
        std::thread::park();
    }
}

/// An address of the first member's /24 that no member has (the firewall check's stranger).
fn stranger_address(s: &Services) -> std::net::Ipv4Addr {
    let o = s.swarm.members[0].address.octets();
    (1..=254u8)
        .rev()
        .map(|h| std::net::Ipv4Addr::new(o[0], o[1], o[2], h))
        .find(|a| s.swarm.members.iter().all(|m| m.address != *a))
        .unwrap_or(std::net::Ipv4Addr::new(o[0], o[1], o[2], 254))
}

/// The harness's own setup ([`TEST_DIFFERENCES`]): the link's route, the registry's name, CA
/// and login.
fn prepare(
    g: &guests::Guests,
    s: &Services,
    reg: &ServedRegistry,
    systems: &[crate::vm::system::VmSystem],
) -> CheckResult {
    let host = s.registry.address.clone();
    let name = host.split(':').next().unwrap_or(&host).to_string();
    let mut done = Vec::new();
    for (i, guest) in g.list.iter().enumerate() {
        let system = &systems[i];
        let Some(n) = system.nics.iter().position(|n| n.mac == guest.public_mac) else {
            continue;
        };
        let net = {
            let o = guest.address.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        };
        let unit = format!(
            "/{}.d",
            crate::vm::render::network_file(n, &system.nics[n].name)
        );
        let script = format!(
            "set -e; mkdir -p {unit}; \
             printf '%s\\n' '# picaboot test services: the link stands in for the ISP router' '[Route]' 'Destination={net}' 'Scope=link' > {unit}/test-link.conf; \
             networkctl reload; \
             grep -q ' {name}$' /etc/hosts || echo '{reg_addr} {name}' >> /etc/hosts; \
             mkdir -p /etc/docker/certs.d/{host}; cat > /etc/docker/certs.d/{host}/ca.crt",
            reg_addr = guests::REGISTRY_GUEST_ADDRESS,
        );
        if let Err(e) = g.sh_in(
            i,
            &script,
            Input::Bytes(reg.ca_pem.as_bytes()),
            Duration::from_secs(60),
        ) {
            return CheckResult {
                name: "test-setup".into(),
                passed: false,
                detail: format!("{}: {e}", guest.name),
            };
        }
        done.push(guest.name.clone());
    }
    let login = format!(
        "docker login --username {} --password-stdin {host} >/dev/null",
        reg.user
    );
    let password = format!("{}\n", reg.password.expose());
    // Every node pulls the stack's images in the background while `services form` runs
    // (each pull of hundreds of MB takes minutes under TCG; production pulls on demand).
    let pulls: Vec<String> = reg
        .digests
        .keys()
        .map(|n| format!("docker pull -q {host}/{n}"))
        .collect();
    let prepull = format!(
        "setsid nohup sh -c {} > /var/log/picaboot-test-prepull.log 2>&1 < /dev/null &",
        super::plan::sh_quote(&pulls.join("; "))
    );
    let mut failed = None;
    for (i, guest) in g.list.iter().enumerate() {
        let r = g
            .sh_in(
                i,
                &login,
                Input::Bytes(password.as_bytes()),
                Duration::from_secs(120),
            )
            .and_then(|_| g.sh(i, &prepull));
        if let Err(e) = r {
            failed = Some(format!("docker login and pull on {}: {e}", guest.name));
            break;
        }
    }
    let (passed, detail) = match failed {
        None => (
            true,
            format!(
                "link route, {name} and its CA on {}; docker login there, images pulled in the background: {}",
                done.join(", "),
                reg.digests.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        ),
        Some(e) => (false, e),
    };
    CheckResult {
        name: "test-setup".into(),
        passed,
        detail,
    }
}

/// `services form`'s steps run by its own runner over the guests' ssh config, each step shown.
fn run_plan(
    g: &guests::Guests,
    steps: &[super::plan::Step],
) -> Result<super::apply::Outcome, super::apply::ApplyError> {
    super::apply::run(
        steps,
        "root",
        Some(&g.ssh_config),
        &mut |i, n, step, run| {
            let what = if run { "" } else { " (already done)" };
            crate::progress::event(&format!(
                "test services: [{i}/{n}] {}: {}{what}",
                step.vm, step.why
            ));
        },
    )
}

/// The first `services form`, before the swarm secrets exist: it must stop at the first
/// secret's precondition, naming it (as it stops for an admin who has not created it yet).
fn apply_until_secret(g: &guests::Guests, steps: &[super::plan::Step]) -> CheckResult {
    let name = "services-form-needs-secret";
    let r = run_plan(g, steps);
    let (passed, detail) = match r {
        Ok(_) => (
            false,
            "ran to the end without the swarm secrets".to_string(),
        ),
        Err(super::apply::ApplyError::Step {
            step,
            command,
            reason,
            ..
        }) => (
            command.starts_with("docker secret inspect") && reason.contains("docker secret create"),
            format!(
                "stopped at step {step} of {} ({command}): {reason}",
                steps.len()
            ),
        ),
    };
    CheckResult {
        name: name.into(),
        passed,
        detail,
    }
}

/// The swarm secrets the stack reads, made on the first manager from its own random bytes
/// (the value never leaves the guest), as the admin does once.
fn create_secrets(g: &guests::Guests, s: &Services) -> CheckResult {
    let names = super::render::secrets(s);
    let script: Vec<String> = names
        .iter()
        .map(|n| {
            format!(
                "docker secret inspect {0} >/dev/null 2>&1 || head -c 32 /dev/urandom | base64 -w0 | docker secret create {0} - >/dev/null",
                super::plan::sh_quote(n)
            )
        })
        .collect();
    let (passed, detail) = match g.sh(0, &script.join(" && ")) {
        Ok(_) => (
            true,
            format!(
                "{} made on {} from its own random bytes",
                names.join(", "),
                g.list[0].name
            ),
        ),
        Err(e) => (false, e),
    };
    CheckResult {
        name: "test-secrets".into(),
        passed,
        detail,
    }
}

/// `services form`'s plan run by its own runner over the guests' ssh config. The second run
/// (`services-form-again`) must find every guarded step done.
fn apply(g: &guests::Guests, steps: &[super::plan::Step], name: &str) -> CheckResult {
    let start = Instant::now();
    let r = run_plan(g, steps);
    let seconds = start.elapsed().as_secs_f64();
    let (passed, detail) = match r {
        Err(e) => (false, e.to_string()),
        Ok(o) => {
            let changed: Vec<String> = o
                .ran
                .iter()
                .filter(|n| steps[*n - 1].unless.is_some())
                .map(|n| format!("{n}. {}", steps[n - 1].why))
                .collect();
            let again = name.ends_with("again");
            (
                !again || changed.is_empty(),
                format!(
                    "{} steps in {seconds:.0} s: {} run, {} already done{}",
                    steps.len(),
                    o.ran.len(),
                    o.already.len(),
                    if changed.is_empty() {
                        String::new()
                    } else {
                        format!("; guarded steps that ran: {}", changed.join("; "))
                    }
                ),
            )
        }
    };
    CheckResult {
        name: name.into(),
        passed,
        detail,
    }
}

/// `report.json` and `report.xml` in `out`.
fn write_reports(outcome: &ProofOutcome, out: &Path) -> Result<(), ProofError> {
    let report = crate::qemu::Report {
        checks: outcome.checks.clone(),
        done_rc: Some(i32::from(!outcome.passed())),
        guest_end: None,
    };
    let xml = report.junit("test-services", outcome.seconds());
    let json = serde_json::to_string_pretty(outcome).unwrap_or_default() + "\n";
    for (name, text) in [("report.xml", xml), ("report.json", json)] {
        let p = out.join(name);
        std::fs::write(&p, text).map_err(ProofError::io("write", &p))?;
    }
    Ok(())
}
