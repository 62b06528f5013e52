//! The hostile corpus: every payload below in every string field of
//! `tests/fixtures/hostile/fields.toml` (each field of the shipped profiles that reaches a
//! rendered file). Each case is either refused by `check` with its exact message, or renders to
//! files that are inert: `shellcheck` accepts every script, rc.local executed in a fresh network
//! namespace (traced with `sh -x`) creates no canary file and runs no `touch`, the storage
//! script's commands and the preseed's `late_command` are byte-identical to the shipped
//! profiles' ones (a value that would change them would need the storage script run in a
//! guest: such values are refused by grammar instead) unless the value is a plain word (only
//! characters no shell treats specially), and the grub.d file `update-grub` sources passes
//! `dash -n` and, sourced under `sh -x`, runs nothing. The same payloads go through
//! `render --disk` and `--mirror`, refused like the profile field or inert. Every case's
//! outcome is blessed in
//! `tests/fixtures/hostile/expected.txt` (`PICABOOT_BLESS=1 cargo test --test hostile`, then
//! review the diff).

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use common::{cmd, require, Netns};
use sha2::{Digest, Sha256};

const CANARY: &str = "/tmp/picaboot-hostile-canary";

/// `(name, payload as TOML basic-string text)`: `{C}` is the canary path.
const PAYLOADS: &[(&str, &str)] = &[
    ("newline-command", "x\\ntouch {C}"),
    ("carriage-return", "x\\rtouch {C}"),
    ("nul", "x\\u0000touch {C}"),
    ("escape", "x\\u001b]0;pwned\\u0007"),
    ("command-substitution", "$(touch {C})"),
    ("backticks", "`touch {C}`"),
    ("single-quote", "x'; touch {C}; '"),
    ("double-quote", "x\\\"; touch {C}; \\\""),
    ("semicolon", "x; touch {C}"),
    ("closing-brace", "x}; touch {C}; {"),
    ("dot-dot", "../../../etc/passwd"),
    ("line-separator", "x\\u2028touch {C}"),
    ("paragraph-separator", "x\\u2029touch {C}"),
    ("bidi-override", "x\\u202etouch {C}"),
    ("very-long", "LONG"),
    // Round two (issue 21): kernel parameters, options, sizes and number grammars.
    ("backslash", "x\\\\"),
    ("parameter-expansion", "${PATH}"),
    ("ifs-substitution", "$(touch${IFS}{C})"),
    ("option", "--allow-unauthenticated"),
    ("empty", ""),
    ("huge-number", "9223372036854775808"),
    ("leading-zero", "091.224.148.84/32"),
    ("system-directory", "/etc"),
    ("lvm-reserved", "x_tmeta"),
];

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    field: Vec<Field>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Field {
    name: String,
    file: String,
    replace: String,
    with: String,
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Lines of a script that are not comments (what runs).
fn code_lines(script: &str) -> Vec<&str> {
    script
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect()
}

/// The shell parts of a preseed: the lines that hand commands to the installer.
fn preseed_commands(preseed: &str) -> Vec<&str> {
    preseed
        .lines()
        .filter(|l| {
            l.contains("late_command") || l.contains("early_command") || l.contains("preseed/run")
        })
        .collect()
}

/// `update-grub` sources the grub.d file as root: `dash -n` accepts it, and sourcing it (under
/// `sh -x`) creates no canary and runs no command.
fn source_grub_defaults(cfg: &Path) -> Result<(), String> {
    let _ = std::fs::remove_file(CANARY);
    let n = cmd("dash").arg("-n").arg(cfg).output().unwrap();
    if !n.status.success() {
        return Err(format!(
            "dash -n refused the grub.d file: {}",
            String::from_utf8_lossy(&n.stderr)
        ));
    }
    let o = cmd("dash")
        .arg("-xc")
        .arg(". \"$1\"")
        .arg("dash")
        .arg(cfg)
        .output()
        .unwrap();
    let trace = String::from_utf8_lossy(&o.stderr);
    if Path::new(CANARY).exists() {
        let _ = std::fs::remove_file(CANARY);
        return Err(format!(
            "sourcing the grub.d file created the canary:\n{trace}"
        ));
    }
    if let Some(l) = trace
        .lines()
        .find(|l| l.starts_with('+') && !l.starts_with("+ .") && !l.starts_with("+ GRUB_"))
    {
        return Err(format!("sourcing the grub.d file ran a command: {l}"));
    }
    if !o.status.success() {
        return Err(format!("sourcing the grub.d file failed:\n{trace}"));
    }
    Ok(())
}

struct Oracles {
    shellchecked: BTreeSet<String>,
    executed: BTreeSet<String>,
    storage_code: Vec<String>,
    late_command: BTreeMap<String, Vec<String>>,
    shim: tempfile::TempDir,
}

impl Oracles {
    fn new(baseline: &Path) -> Oracles {
        let storage = std::fs::read_to_string(
            baseline.join("alice/rootfs/usr/local/sbin/picaboot-storage-setup"),
        )
        .unwrap();
        let mut late_command = BTreeMap::new();
        for host in ["alice", "bob"] {
            let p = std::fs::read_to_string(baseline.join(host).join("preseed.cfg")).unwrap();
            late_command.insert(
                host.to_string(),
                preseed_commands(&p)
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
            );
        }
        // `sleep` does nothing (rc.local waits for links to settle): the corpus runs fast.
        let shim = tempfile::tempdir().unwrap();
        std::fs::write(shim.path().join("sleep"), "#!/bin/sh\nexit 0\n").unwrap();
        let sleep = shim.path().join("sleep");
        let mut perm = std::fs::metadata(&sleep).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(&sleep, perm).unwrap();
        Oracles {
            shellchecked: BTreeSet::new(),
            executed: BTreeSet::new(),
            storage_code: code_lines(&storage)
                .into_iter()
                .map(str::to_string)
                .collect(),
            late_command,
            shim,
        }
    }

    /// Every oracle on a rendered tree; `Err` says which one refused it. With `same_commands`
    /// false (a `--disk` override names another device by design, or the value is a plain
    /// word) the storage script's and preseed's commands may differ from the shipped ones:
    /// they are then judged by shellcheck only.
    fn judge_with(&mut self, out: &Path, same_commands: bool) -> Result<(), String> {
        for host in ["alice", "bob"] {
            let dir = out.join(host);
            for s in [
                "rootfs/etc/rc.local",
                "rootfs/usr/local/sbin/picaboot-storage-setup",
                "rootfs/usr/local/sbin/picaboot-proxmox",
                "late-command.sh",
                "partman-early.sh",
                "rootfs/usr/local/sbin/picaboot-find-disks",
            ] {
                let bytes = std::fs::read(dir.join(s)).unwrap();
                if self.shellchecked.insert(sha(&bytes)) {
                    let o = cmd("shellcheck")
                        .args(["--shell=sh", "--severity=style"])
                        .arg(dir.join(s))
                        .output()
                        .unwrap();
                    if !o.status.success() {
                        return Err(format!(
                            "shellcheck refused {host}/{s}:\n{}",
                            String::from_utf8_lossy(&o.stdout)
                        ));
                    }
                }
            }
            let storage =
                std::fs::read_to_string(dir.join("rootfs/usr/local/sbin/picaboot-storage-setup"))
                    .unwrap();
            if same_commands && host == "alice" && code_lines(&storage) != self.storage_code {
                return Err(
                    "the storage script's commands changed: that would need a guest to prove; refuse the value by grammar"
                        .into(),
                );
            }
            let preseed = std::fs::read_to_string(dir.join("preseed.cfg")).unwrap();
            if same_commands && preseed_commands(&preseed) != self.late_command[host] {
                return Err(format!("{host}: the preseed's commands changed"));
            }
            let grub = dir.join("rootfs/etc/default/grub.d/picaboot.cfg");
            if grub.exists() && self.executed.insert(sha(&std::fs::read(&grub).unwrap())) {
                source_grub_defaults(&grub)?;
            }
            let rc = std::fs::read(dir.join("rootfs/etc/rc.local")).unwrap();
            if self.executed.insert(sha(&rc)) {
                self.run_rc_local(&dir.join("rootfs/etc/rc.local"))?;
            }
        }
        Ok(())
    }

    /// rc.local under `sh -x` in a fresh network namespace with a private /etc/resolv.conf.
    fn run_rc_local(&self, rc_local: &Path) -> Result<(), String> {
        let _ = std::fs::remove_file(CANARY);
        let ns = Netns::new("hostile");
        let resolv = self.shim.path().join("resolv.conf");
        std::fs::write(&resolv, "nameserver 192.0.2.1\n").unwrap();
        let path = format!(
            "{}:{}",
            self.shim.path().display(),
            common::path_with_sbin()
        );
        let o = ns
            .exec()
            .env("PATH", path)
            .args(["unshare", "--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount --bind \"$1\" /etc/resolv.conf && exec sh -x \"$2\"")
            .args(["sh", resolv.to_str().unwrap(), rc_local.to_str().unwrap()])
            .output()
            .unwrap();
        let trace = String::from_utf8_lossy(&o.stderr);
        if Path::new(CANARY).exists() {
            let _ = std::fs::remove_file(CANARY);
            return Err(format!("rc.local created the canary:\n{trace}"));
        }
        if let Some(l) = trace.lines().find(|l| l.starts_with("+ touch")) {
            return Err(format!("rc.local ran an extra command: {l}"));
        }
        if !o.status.success() {
            return Err(format!("rc.local exited {}:\n{trace}", o.status));
        }
        Ok(())
    }
}

#[test]
fn hostile_values_are_refused_or_inert() {
    for (p, pkg) in [
        ("shellcheck", "shellcheck"),
        ("ip", "iproute2"),
        ("unshare", "util-linux"),
    ] {
        require(p, pkg);
    }
    let fixtures = common::root().join("tests/fixtures/hostile");
    let fields: Fields =
        toml::from_str(&std::fs::read_to_string(fixtures.join("fields.toml")).unwrap()).unwrap();
    let baseline_dir = common::scratch_profiles();
    let (_keep, baseline) = common::render_all(&baseline_dir.path().join("profiles"));
    let mut oracles = Oracles::new(&baseline);

    let mut report = String::new();
    let (mut refused, mut accepted, mut cases, mut override_cases) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for f in &fields.field {
        for (pname, payload) in PAYLOADS {
            cases += 1;
            let payload = if *payload == "LONG" {
                "a".repeat(5000)
            } else {
                payload.replace("{C}", CANARY)
            };
            let scratch = common::scratch_profiles();
            let profiles = scratch.path().join("profiles");
            common::edit(
                &profiles.join(&f.file),
                &f.replace,
                &f.with.replace("@@", &payload),
            );
            let _ = writeln!(report, "## {} / {pname}", f.name);
            let check = common::picaboot(scratch.path(), &["check"]);
            if !check.status.success() {
                refused += 1;
                let stderr = String::from_utf8_lossy(&check.stderr);
                if check.status.code() != Some(1) {
                    failures.push(format!(
                        "{} / {pname}: check exited {:?}",
                        f.name,
                        check.status.code()
                    ));
                }
                let _ = writeln!(report, "refused by check:\n{stderr}");
                continue;
            }
            let out = scratch.path().join("out");
            let o = common::picaboot(
                scratch.path(),
                &["render", "--all", "-o", out.to_str().unwrap()],
            );
            if !o.status.success() {
                refused += 1;
                let _ = writeln!(
                    report,
                    "refused by render:\n{}",
                    String::from_utf8_lossy(&o.stderr)
                );
                continue;
            }
            accepted += 1;
            // A payload made only of characters no shell treats specially (shell_quote's plain
            // set) cannot add a command: the storage script's and preseed's commands may then
            // carry it (a longer mount point or name), and are judged by shellcheck and the run.
            let plain = !payload.is_empty()
                && payload
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c));
            match oracles.judge_with(&out, !plain) {
                Ok(()) if plain => {
                    let _ = writeln!(
                        report,
                        "accepted: inert (a plain word: shellcheck, rc.local in a namespace)\n"
                    );
                }
                Ok(()) => {
                    let _ = writeln!(report, "accepted: inert (shellcheck, rc.local in a namespace, storage and preseed commands unchanged)\n");
                }
                Err(why) => {
                    failures.push(format!("{} / {pname}: {why}", f.name));
                    let _ = writeln!(report, "accepted: NOT INERT: {why}\n");
                }
            }
        }
    }
    // Command-line overrides of `render` (the same payloads): refused like the profile field
    // they override, or inert.
    const OVERRIDES: &[(&str, &str)] = &[
        ("--disk", "ssd0=/dev/sda@@"),
        ("--disk", "ssd0=@@"),
        ("--mirror", "http://deb.example/debian/@@"),
    ];
    for (flag, template) in OVERRIDES {
        for (pname, payload) in PAYLOADS {
            cases += 1;
            override_cases += 1;
            let payload = if *payload == "LONG" {
                "a".repeat(5000)
            } else {
                payload.replace("{C}", CANARY)
            };
            // The payloads are TOML basic-string text: decode them to the bytes a shell passes.
            let decoded: toml::Value = toml::from_str(&format!("v = \"{payload}\"")).unwrap();
            let value = template.replace("@@", decoded["v"].as_str().unwrap());
            let _ = writeln!(report, "## render {flag} {template} / {pname}");
            if value.contains('\0') {
                // argv cannot carry a NUL byte: nothing to run.
                refused += 1;
                let _ = writeln!(report, "not passable: argv holds no NUL byte\n");
                continue;
            }
            let scratch = common::scratch_profiles();
            let out = scratch.path().join("out");
            let o = common::picaboot(
                scratch.path(),
                &["render", "--all", "-o", out.to_str().unwrap(), flag, &value],
            );
            if !o.status.success() {
                refused += 1;
                if o.status.code() != Some(1) {
                    failures.push(format!(
                        "render {flag} / {pname}: exited {:?}",
                        o.status.code()
                    ));
                }
                if out.exists() {
                    failures.push(format!(
                        "render {flag} / {pname}: wrote out/ despite the error"
                    ));
                }
                let _ = writeln!(
                    report,
                    "refused by render:\n{}",
                    String::from_utf8_lossy(&o.stderr)
                );
                continue;
            }
            accepted += 1;
            match oracles.judge_with(&out, *flag != "--disk") {
                Ok(()) => {
                    let _ = writeln!(report, "accepted: inert\n");
                }
                Err(why) => {
                    failures.push(format!("render {flag} / {pname}: {why}"));
                    let _ = writeln!(report, "accepted: NOT INERT: {why}\n");
                }
            }
        }
    }
    eprintln!(
        "hostile corpus: {cases} cases ({} fields x {} payloads, and {override_cases} render overrides): {refused} refused, {accepted} accepted and inert-checked; {} distinct rc.local and grub.d files executed, {} distinct scripts shellchecked",
        fields.field.len(),
        PAYLOADS.len(),
        oracles.executed.len(),
        oracles.shellchecked.len()
    );
    let expected_path = fixtures.join("expected.txt");
    if std::env::var_os("PICABOOT_BLESS").is_some() {
        std::fs::write(&expected_path, &report).unwrap();
    } else {
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != report {
            let got = std::env::temp_dir().join("picaboot-hostile-got.txt");
            std::fs::write(&got, &report).unwrap();
            failures.push(format!(
                "outcomes differ from {} (got: {}; bless with PICABOOT_BLESS=1 after review)",
                expected_path.display(),
                got.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
