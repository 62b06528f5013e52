//! Man pages and shell completions, generated from the clap tree, checked by the programs that
//! consume them: `man -l` renders every page (man-db + groff) without a warning, and bash,
//! zsh and fish parse their completion scripts (`-n`).

mod common;

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
