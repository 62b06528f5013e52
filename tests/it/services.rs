//! The services layer's rendered files against real programs: every services VM's nftables
//! ruleset through `nft -c -f` (package nftables), and the stack file through Debian's
//! `docker-compose config -q` (package docker-compose) and a YAML parser.

use crate::common;

/// `services render` of the shipped profiles into a scratch directory.
fn rendered() -> tempfile::TempDir {
    let scratch = common::scratch_profiles();
    let o = common::picaboot(scratch.path(), &["services", "render", "-o", "out"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    scratch
}

#[test]
fn each_vm_ruleset_passes_nft_check() {
    common::require("nft", "nftables");
    let scratch = rendered();
    for vm in ["pica01", "pica02"] {
        let path = scratch.path().join("out").join(vm).join("nftables.conf");
        let o = common::cmd("nft")
            .args(["-c", "-f"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{vm}: nft -c refused:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let peer = public_v4(if vm == "pica01" { "pica02" } else { "pica01" });
        assert!(
            text.contains(&format!(
                "ip saddr {{ {peer} }} tcp dport {{ 2377, 7946, 24007-24008, 49152-60999 }} accept"
            )),
            "{text}"
        );
    }
}

#[test]
fn stack_file_passes_docker_compose_config() {
    common::require("docker-compose", "docker-compose");
    let scratch = rendered();
    let out = scratch.path().join("out");
    let o = common::cmd("docker-compose")
        .args(["-f", "stack.yml", "config", "-q"])
        .current_dir(&out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "docker-compose config refused the stack:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn form_dry_run_prints_the_sequence_without_the_token() {
    let scratch = common::scratch_profiles();
    let o = common::picaboot(scratch.path(), &["services", "form", "--dry-run"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let (p1, p2) = (public_v4("pica01"), public_v4("pica02"));
    let volume = format!(
        "gluster --mode=script volume create gluster-data replica 2 {p1}:/gluster-data/brick {p2}:/gluster-data/brick"
    );
    let init = format!("docker swarm init --advertise-addr {p1}");
    for want in [
        volume.as_str(),
        init.as_str(),
        "--token <token from step",
        "docker network create --driver overlay --opt encrypted --attachable pica-net",
        "docker stack deploy --with-registry-auth -c /etc/picaboot/stack.yml pica",
    ] {
        assert!(out.contains(want), "missing `{want}` in\n{out}");
    }
    assert!(!out.contains("SWMTKN"), "no token in a dry run");
}

/// Two managers are allowed, with a `note:` on stdout naming the file and line and the way out.
#[test]
fn two_managers_are_accepted_with_a_quorum_note() {
    let scratch = common::scratch_profiles();
    let path = scratch.path().join("profiles/services.toml");
    common::edit(
        &path,
        "managers = [\"pica01\"]",
        "managers = [\"pica01\", \"pica02\"]",
    );
    common::edit(&path, "workers = [\"pica02\"]", "workers = []");
    let o = common::picaboot(scratch.path(), &["check"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let text = std::fs::read_to_string(&path).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("managers ="))
        .unwrap()
        + 1;
    let want = format!("note: profiles/services.toml:{line}: swarm.managers: two managers tolerate zero manager failures");
    assert!(out.contains(&want), "missing `{want}` in\n{out}");
    assert!(out.contains("one manager and one worker") && out.contains("third manager"));
}

/// The two oracles discriminate: a port out of range in a ruleset and an unknown deploy key
/// in the stack file are refused (so their acceptance above means something).
#[test]
fn the_oracles_refuse_a_broken_ruleset_and_stack() {
    common::require("nft", "nftables");
    common::require("docker-compose", "docker-compose");
    let scratch = rendered();
    let out = scratch.path().join("out");
    let rules = std::fs::read_to_string(out.join("pica01/nftables.conf")).unwrap();
    std::fs::write(
        out.join("bad.nft"),
        rules.replace("4789, 7946", "4789, 79466"),
    )
    .unwrap();
    let o = common::cmd("nft")
        .args(["-c", "-f"])
        .arg(out.join("bad.nft"))
        .output()
        .unwrap();
    assert!(!o.status.success(), "nft -c accepted port 79466");
    let stack = std::fs::read_to_string(out.join("stack.yml")).unwrap();
    std::fs::write(
        out.join("bad.yml"),
        stack.replace("replicas: 1", "replicaz: 1"),
    )
    .unwrap();
    let o = common::cmd("docker-compose")
        .args(["-f", "bad.yml", "config", "-q"])
        .current_dir(&out)
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "docker-compose accepted deploy.replicaz"
    );
}

/// Swarm secrets: docker-compose's normalized view of the stack gives every service the
/// secrets its profile declares (mode 0400) and declares each one external; broken secret
/// entries are refused.
#[test]
fn stack_secrets_pass_docker_compose_and_broken_entries_are_refused() {
    common::require("docker-compose", "docker-compose");
    let scratch = rendered();
    let out = scratch.path().join("out");
    let model = picaboot::profile::load(&scratch.path().join("profiles"))
        .expect("shipped profiles load")
        .profiles
        .services
        .expect("services.toml");
    let names: std::collections::BTreeSet<&String> =
        model.services.iter().flat_map(|s| &s.secrets).collect();
    assert!(!names.is_empty(), "the shipped backups read secrets");
    let compose = |file: &str| {
        common::cmd("docker-compose")
            .args(["-f", file, "config"])
            .current_dir(&out)
            .output()
            .unwrap()
    };
    let o = compose("stack.yml");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mode = format!("mode: {}", 0o400);
    for n in &names {
        for want in [format!("source: {n}"), format!("target: {n}")] {
            assert!(text.contains(&want), "{want} missing:\n{text}");
        }
    }
    assert!(text.contains(&mode), "{mode} missing:\n{text}");
    let top = text
        .split("\nsecrets:\n")
        .nth(1)
        .expect("top-level secrets");
    for n in &names {
        assert!(top.contains(&format!("{n}:\n    external: true")), "{top}");
    }
    // The oracle reads the secrets' schema: an unknown key in a service's secret entry, in a
    // top-level declaration, and a mode that is not a number are each refused. (Measured:
    // compose 1.29 accepts a reference to an undeclared secret; Docker's `stack deploy`
    // refuses it, and picaboot declares every secret it references by construction,
    // `services::render` unit tests.)
    let first = names.iter().next().unwrap();
    let stack = std::fs::read_to_string(out.join("stack.yml")).unwrap();
    let top_decl = format!("\n  \"{first}\":\n    external: true");
    for (i, (from, to)) in [
        (
            format!("{{ source: \"{first}\""),
            format!("{{ sourc: \"{first}\""),
        ),
        (
            top_decl.clone(),
            top_decl.replace("external:", "externall:"),
        ),
        ("mode: 0400".to_string(), "mode: \"r\"".to_string()),
    ]
    .iter()
    .enumerate()
    {
        assert!(stack.contains(from.as_str()), "{from} in {stack}");
        let file = format!("bad-secret-{i}.yml");
        std::fs::write(out.join(&file), stack.replacen(from.as_str(), to, 1)).unwrap();
        let o = compose(&file);
        assert!(
            !o.status.success(),
            "docker-compose accepted {to}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
}

/// A stand-in `ssh` (first in PATH): logs each destination, command line and stdin, prints a
/// fake join token for `join-token`, and answers the plan's guards as a fresh VM (fail) or a
/// formed one (succeed), per `STUB_STATE`. It tests the executor's logic only (guards, the
/// token's hand-over, the report); GlusterFS and Docker did not run here.
const SSH_STUB: &str = r#"#!/bin/sh
while [ "$1" != "--" ]; do shift; done
dest=$2; cmd=$3
input=$(cat)
printf 'DEST %s\nCMD %s\nSTDIN %s\n' "$dest" "$cmd" "$input" >> "$STUB_LOG"
case "$cmd" in
  *'sha256sum -c'*|*'is-enabled glusterd'*|*'gluster pool list'*|*'gluster volume info'*|*'grep -qxF'*|*LocalNodeState*|*'network inspect'*)
    [ "$STUB_STATE" = formed ] && exit 0 || exit 1 ;;
  *'join-token -q worker'*) echo SWMTKN-1-stubtoken ;;
esac
exit 0
"#;

fn form_with_stub(scratch: &std::path::Path, state: &str) -> (std::process::Output, String) {
    use std::os::unix::fs::PermissionsExt;
    let bin = scratch.join("stub-bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("ssh"), SSH_STUB).unwrap();
    std::fs::set_permissions(bin.join("ssh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = scratch.join(format!("ssh-{state}.log"));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_picaboot"))
        .args(["services", "form"])
        .current_dir(scratch)
        .env_remove("PICABOOT_PROFILES")
        .env_remove("PICABOOT_SSH_CONFIG")
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("STUB_LOG", &log)
        .env("STUB_STATE", state)
        .output()
        .unwrap();
    (o, std::fs::read_to_string(&log).unwrap_or_default())
}

#[test]
fn form_hands_the_token_over_stdin_and_a_second_run_finds_everything_done() {
    let scratch = common::scratch_profiles();
    let (o, log) = form_with_stub(scratch.path(), "fresh");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        !out.contains("SWMTKN") && !err.contains("SWMTKN"),
        "token printed"
    );
    let join = log
        .split("DEST ")
        .find(|e| e.contains("docker swarm join --advertise-addr"))
        .expect("a join was sent");
    assert!(join.starts_with("root@91.224.148.60\n"), "{join}");
    let cmd = join.lines().find(|l| l.starts_with("CMD ")).unwrap();
    assert!(!cmd.contains("SWMTKN"), "token on the command line: {cmd}");
    assert!(join.contains("STDIN SWMTKN-1-stubtoken"), "{join}");
    assert!(out.contains("0 already done"), "{out}");

    let (o, _) = form_with_stub(scratch.path(), "formed");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("nothing changed"), "{out}");
}

/// `services render` of the shipped profiles, byte for byte against `tests/golden-services/`
/// (regenerate with `PICABOOT_BLESS=1`, then review the diff), and twice the same bytes.
#[test]
fn services_render_matches_golden_files_and_is_deterministic() {
    let a = rendered();
    let b = rendered();
    let read = |d: &std::path::Path| {
        walkdir::WalkDir::new(d)
            .sort_by_file_name()
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                let rel = e.path().strip_prefix(d).unwrap().display().to_string();
                (rel, std::fs::read(e.path()).unwrap())
            })
            .collect::<Vec<_>>()
    };
    let out = read(&a.path().join("out"));
    assert_eq!(out, read(&b.path().join("out")), "two renders differ");
    let golden = common::root().join("tests/golden-services");
    if std::env::var_os("PICABOOT_BLESS").is_some() {
        let _ = std::fs::remove_dir_all(&golden);
        common::copy_tree(&a.path().join("out"), &golden);
    }
    assert_eq!(
        out,
        read(&golden),
        "services render differs from tests/golden-services/"
    );
}

/// A VM's public IPv4 address (its NIC on the node's public bridge), from the shipped profiles.
fn public_v4(vm: &str) -> String {
    let project = picaboot::project::open(&common::root().join("profiles")).unwrap();
    let p = &project.loaded.profiles;
    let v = &p.vms[vm];
    let bridge = p.hosts[&v.node].network.bridge.clone().unwrap();
    let nic = v.nics.iter().find(|n| n.bridge == bridge).unwrap();
    nic.ipv4.unwrap().addr().to_string()
}
