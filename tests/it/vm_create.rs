//! `vm list` and `vm create --dry-run` through the binary: the plan printed is the library's
//! (every command of `vm::create`'s read and apply steps, in order), nothing is connected to,
//! and an unknown VM names the known ones. The judgement over recorded node states (absent,
//! matching, differing, held by the other node) is unit-tested in `src/vm/create.rs`.

use crate::common;

use picaboot::vm::create::{self, ImageOnNode, Judgement};

#[test]
fn dry_run_prints_the_library_sequence_in_order() {
    let scratch = common::scratch_profiles();
    let out = common::picaboot(scratch.path(), &["vm", "create", "pica01", "--dry-run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let project = picaboot::project::open(&scratch.path().join("profiles")).unwrap();
    let vm = &project.loaded.profiles.vms["pica01"];
    let image = ImageOnNode::placeholder(vm);
    let steps: Vec<String> = create::read_steps(vm)
        .into_iter()
        .chain(create::apply_steps(vm, &image, &Judgement::Absent, false).unwrap())
        .map(|s| s.command)
        .collect();
    let mut at = 0;
    for (i, cmd) in steps.iter().enumerate() {
        let line = format!("{:2}. {cmd}\n", i + 1);
        let Some(found) = stdout[at..].find(&line) else {
            panic!("step `{line}` missing or out of order in\n{stdout}");
        };
        at += found + line.len();
    }
    assert!(stdout.contains("dry run: nothing is run"));
    assert!(stdout.contains(&format!(
        "ssh root@{}",
        project.loaded.profiles.hosts["alice"].network.ipv4.addr()
    )));
}

#[test]
fn dry_run_json_holds_reads_and_steps() {
    let scratch = common::scratch_profiles();
    let out = common::picaboot(
        scratch.path(),
        &["vm", "create", "pica02", "--dry-run", "--json", "--replace"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["node"], "bob");
    assert_eq!(v["reads"].as_array().unwrap().len(), 2);
    let kinds: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["destroy", "upload", "create", "resize", "cleanup", "start"]
    );
}

#[test]
fn list_shows_every_vm_profile_and_an_unknown_vm_is_named() {
    let scratch = common::scratch_profiles();
    let out = common::picaboot(scratch.path(), &["vm", "list", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut want: Vec<String> = std::fs::read_dir(scratch.path().join("profiles/vms"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".toml")
                .to_string()
        })
        .collect();
    want.sort();
    let got: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    assert_eq!(got, want);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("root_password_hash"));

    let out = common::picaboot(scratch.path(), &["vm", "create", "pica9", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "no VM profile `pica9` (vms/pica9.toml); known: {}",
            want.join(", ")
        )),
        "{err}"
    );
}
