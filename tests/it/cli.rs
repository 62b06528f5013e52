//! The command line as a user and a script meet it: man pages and shell completions generated
//! from the clap tree and checked by the programs that consume them (`man -l` renders every
//! page without a warning; bash, zsh and fish parse their completion scripts), `-q` accepted
//! by every command, `--json` output and JSON errors parsed by serde_json.

use crate::common;

use std::process::Command;

use common::require;

#[test]
fn every_man_page_renders_with_man() {
    require("man", "man-db");
    require("groff", "groff-base");
    let dir = tempfile::tempdir().unwrap();
    let o = common::picaboot(&common::root(), &["man", dir.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let listed: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(String::from)
        .collect();
    for page in [
        "picaboot.1",
        "picaboot-render.1",
        "picaboot-netboot.1",
        "picaboot-image-build.1",
        "picaboot-image-push.1",
        "picaboot-completions.1",
    ] {
        assert!(
            listed.iter().any(|l| l.ends_with(page)),
            "{page} not written: {listed:?}"
        );
    }
    for page in &listed {
        let r = Command::new("man")
            .args(["--warnings", "-l", "-P", "cat", page])
            .env("MANWIDTH", "80")
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&r.stdout);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(r.status.success(), "man -l {page}: {err}");
        assert!(err.trim().is_empty(), "man -l {page} warns: {err}");
        assert!(
            text.contains("NAME") && text.contains("SYNOPSIS"),
            "{page}: {text}"
        );
    }
    let top = std::fs::read_to_string(dir.path().join("picaboot.1")).unwrap();
    assert!(
        top.contains("completions"),
        "subcommands listed on picaboot(1)"
    );
}

#[test]
fn completion_scripts_parse_in_their_shells() {
    for (shell, program, package) in [
        ("bash", "bash", "bash"),
        ("zsh", "zsh", "zsh"),
        ("fish", "fish", "fish"),
    ] {
        require(program, package);
        let o = common::picaboot(&common::root(), &["completions", shell]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let script = String::from_utf8_lossy(&o.stdout);
        assert!(script.contains("netboot"), "{shell}: subcommands completed");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("picaboot.completion");
        std::fs::write(&f, &o.stdout).unwrap();
        let r = Command::new(program).arg("-n").arg(&f).output().unwrap();
        assert!(
            r.status.success(),
            "{program} -n rejects the {shell} completion: {}",
            String::from_utf8_lossy(&r.stderr)
        );
    }
    // bash: sourcing it registers the completion function for picaboot.
    let o = common::picaboot(&common::root(), &["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("picaboot.bash");
    std::fs::write(&f, &o.stdout).unwrap();
    let r = Command::new("bash")
        .arg("-c")
        .arg(format!(". {} && complete -p picaboot", f.display()))
        .output()
        .unwrap();
    assert!(
        r.status.success() && String::from_utf8_lossy(&r.stdout).contains("picaboot"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
}

/// Every command path of the clap tree (`["image", "build"]`, …).
fn command_paths() -> Vec<Vec<String>> {
    use clap::CommandFactory;
    fn walk(c: &clap::Command, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        for sub in c.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            let mut p = prefix.clone();
            p.push(sub.get_name().to_string());
            out.push(p.clone());
            walk(sub, p, out);
        }
    }
    let mut out = Vec::new();
    walk(&picaboot::cli::Cli::command(), Vec::new(), &mut out);
    out
}

#[test]
fn every_command_takes_quiet() {
    let paths = command_paths();
    assert!(paths.len() > 10, "{paths:?}");
    for p in paths {
        let mut args: Vec<&str> = p.iter().map(String::as_str).collect();
        args.extend(["-q", "--help"]);
        let o = common::picaboot(&common::root(), &args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("--quiet"),
            "{args:?} documents -q"
        );
    }
}

#[test]
fn json_output_is_json_and_quiet() {
    let scratch = common::scratch_profiles();
    let out = scratch.path().join("out");
    let o = common::picaboot(
        scratch.path(),
        &["render", "alice", "--json", "-o", out.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice::<serde_json::Value>(&o.stdout).expect("render --json prints JSON");
    for args in [
        &["check", "--json", "--images", "/nonexistent"][..],
        &["image", "list", "--json", "--images"],
    ] {
        let mut a = args.to_vec();
        let images = common::root().join("images");
        if a.last() == Some(&"--images") {
            a.push(images.to_str().unwrap());
        }
        let o = common::picaboot(scratch.path(), &a);
        assert!(
            o.status.success(),
            "{a:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .unwrap_or_else(|e| panic!("{a:?}: {e}: {}", String::from_utf8_lossy(&o.stdout)));
        assert!(o.stderr.is_empty(), "{a:?}: nothing on stderr with --json");
    }
}

#[test]
fn with_json_an_error_is_one_json_object_on_stdout() {
    // A profile problem: exit 1, file and line of the first problem, every problem listed.
    let scratch = common::scratch_profiles();
    let host = scratch.path().join("profiles/hosts/alice.toml");
    let text = std::fs::read_to_string(&host).unwrap();
    std::fs::write(&host, format!("{text}\nno-such-key = 1\n")).unwrap();
    let o = common::picaboot(
        scratch.path(),
        &["check", "--json", "--images", "/nonexistent"],
    );
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)));
    assert_eq!(v["code"], 1);
    assert!(v["error"].as_str().unwrap().contains("no-such-key"), "{v}");
    assert!(
        v["file"].as_str().unwrap().ends_with("hosts/alice.toml"),
        "{v}"
    );
    assert!(v["line"].as_u64().unwrap() > 1, "{v}");
    assert!(!v["problems"].as_array().unwrap().is_empty(), "{v}");
    // An unknown image: exit 1 as well, no file.
    let o = common::picaboot(
        &common::root(),
        &["image", "build", "no-such-image", "--json"],
    );
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["code"], 1);
    assert!(
        v["error"].as_str().unwrap().contains("no-such-image"),
        "{v}"
    );
}

#[test]
fn cluster_form_dry_run_prints_the_sequence_for_picasoft() {
    let root = common::root();
    let project = picaboot::project::open(&root.join("profiles")).unwrap();
    let hosts = &project.loaded.profiles.hosts;
    let link = |h: &str| {
        hosts[h]
            .cluster_link
            .as_ref()
            .unwrap()
            .address
            .addr()
            .to_string()
    };
    let public = |h: &str| hosts[h].network.ipv4.addr().to_string();
    let (a, b) = (link("alice"), link("bob"));

    let o = common::picaboot(&root, &["cluster", "form", "picasoft", "--dry-run"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let commands: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_once("] ").map(|(_, c)| c))
        .collect();
    let create = format!("pvecm create picasoft --link0 {a}");
    let join = format!(
        "pvesh create /cluster/config/join --hostname {a} --fingerprint <fingerprint> --link0 {b}"
    );
    let pos = |needle: &str| {
        commands
            .iter()
            .position(|c| c.contains(needle))
            .unwrap_or_else(|| panic!("`{needle}` not in the plan:\n{out}"))
    };
    assert!(pos("echo PVE") < pos(&create), "preflight first");
    assert!(pos(&create) < pos("-fingerprint -sha256") && pos("-fingerprint -sha256") < pos(&join));
    assert!(
        pos(&join) < pos("/etc/pve/corosync.conf.new")
            && pos("corosync.conf.new") < pos("pvecm status")
    );
    assert!(out.contains(&format!("ssh root@{}", public("alice"))));
    assert!(out.contains("Flags 2Node Quorate WaitForAll"));
    assert!(
        !out.contains("PICABOOT_PVE_PASSWORD="),
        "no secret in the plan"
    );

    // --use-ssh, --ssh overrides, --json.
    let o = common::picaboot(
        &root,
        &[
            "cluster",
            "form",
            "picasoft",
            "--dry-run",
            "--use-ssh",
            "--ssh",
            "bob=admin@bob.lan",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["nodes"][1]["ssh"], "admin@bob.lan");
    let steps = v["steps"].as_array().unwrap();
    assert!(steps
        .iter()
        .any(|s| s["kind"] == "join"
            && s["command"] == format!("pvecm add {a} --use_ssh --link0 {b}")));

    // Bad input is refused before anything runs.
    let o = common::picaboot(&root, &["cluster", "form", "nosuch", "--dry-run"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no cluster profile `nosuch`"));
    let o = common::picaboot(
        &root,
        &[
            "cluster",
            "form",
            "picasoft",
            "--dry-run",
            "--ssh",
            "carol=x",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    // A real run without a password for the API join: exit 1, naming where it is read from.
    let o = Command::new(env!("CARGO_BIN_EXE_picaboot"))
        .args(["cluster", "form", "picasoft"])
        .current_dir(&root)
        .env_remove("PICABOOT_PVE_PASSWORD")
        .env_remove("PICABOOT_PVE_PASSWORD_FILE")
        .env_remove("PICABOOT_PROFILES")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("PICABOOT_PVE_PASSWORD_FILE"));
}
