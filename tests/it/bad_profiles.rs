//! Every bad input in `tests/fixtures/bad/*.toml` is one edit of the shipped profiles; `check`
//! must print exactly the fixture's `expected` text and exit 1, and `render` must fail the same
//! way and write nothing. Regenerate expectations after an intended message change with
//! `PICABOOT_BLESS=1 cargo test --test bad_profiles`, then review the diff.

use crate::common;

use std::path::Path;

#[derive(serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Fixture {
    file: String,
    replace: String,
    with: String,
    copy_to: Option<String>,
    expected: String,
}

fn apply(f: &Fixture, profiles: &Path) {
    let src = profiles.join(&f.file);
    match &f.copy_to {
        Some(to) => {
            let text = std::fs::read_to_string(&src).unwrap();
            assert_eq!(
                text.matches(&f.replace).count(),
                1,
                "{}: pattern must occur once",
                f.file
            );
            std::fs::write(profiles.join(to), text.replacen(&f.replace, &f.with, 1)).unwrap();
        }
        None => common::edit(&src, &f.replace, &f.with),
    }
}

#[test]
fn bad_profiles_give_exact_errors_and_write_nothing() {
    let dir = common::root().join("tests/fixtures/bad");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    names.sort();
    assert!(names.len() >= 15, "at least 15 bad inputs");
    let bless = std::env::var_os("PICABOOT_BLESS").is_some();
    let mut failures = Vec::new();
    for path in &names {
        let text = std::fs::read_to_string(path).unwrap();
        let fixture: Fixture =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let scratch = common::scratch_profiles();
        apply(&fixture, &scratch.path().join("profiles"));

        let check = common::picaboot(scratch.path(), &["check"]);
        let stderr = String::from_utf8_lossy(&check.stderr).into_owned();
        if bless {
            let (head, _) = text.split_once("expected = \"\"\"").unwrap();
            // A TOML basic string: backslashes escaped, as the fixtures' own text is read.
            let escaped = stderr.replace('\\', "\\\\");
            std::fs::write(path, format!("{head}expected = \"\"\"\n{escaped}\"\"\"\n")).unwrap();
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy();
        if check.status.code() != Some(1) {
            failures.push(format!("{name}: check exited {:?}", check.status.code()));
        }
        if stderr != fixture.expected {
            failures.push(format!(
                "{name}: check printed\n{stderr}expected\n{}",
                fixture.expected
            ));
        }

        let render = common::picaboot(scratch.path(), &["render", "--all", "-o", "out"]);
        if render.status.code() != Some(1)
            || String::from_utf8_lossy(&render.stderr) != fixture.expected
        {
            failures.push(format!(
                "{name}: render exited {:?} with\n{}",
                render.status.code(),
                String::from_utf8_lossy(&render.stderr)
            ));
        }
        if scratch.path().join("out").exists() {
            failures.push(format!("{name}: render wrote out/ despite the error"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_failed_render_leaves_previous_output_untouched() {
    let scratch = common::scratch_profiles();
    let ok = common::picaboot(scratch.path(), &["render", "alice", "-o", "out"]);
    assert!(ok.status.success());
    let before = std::fs::read(scratch.path().join("out/alice/rootfs/etc/rc.local")).unwrap();
    common::edit(
        &scratch.path().join("profiles/hosts/alice.toml"),
        "ipv4-onlink = true",
        "ipv4-onlink = false",
    );
    let bad = common::picaboot(scratch.path(), &["render", "alice", "-o", "out"]);
    assert_eq!(bad.status.code(), Some(1));
    let after = std::fs::read(scratch.path().join("out/alice/rootfs/etc/rc.local")).unwrap();
    assert_eq!(before, after);
    let entries: Vec<_> = std::fs::read_dir(scratch.path().join("out"))
        .unwrap()
        .collect();
    assert_eq!(entries.len(), 1, "no temporary directory left behind");
}

#[test]
fn unknown_host_is_a_user_error() {
    let scratch = common::scratch_profiles();
    let o = common::picaboot(scratch.path(), &["render", "carol", "-o", "out"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "picaboot: error: no host profile `carol` (known: alice, bob)\n"
    );
    assert!(!scratch.path().join("out").exists());
}

/// `render --disk` and `--mirror` go through the grammar of the profile field they override
/// (and `--disk` through its rule that no device is named for two disks): refused with the
/// field's message, exit 1, nothing written.
#[test]
fn render_overrides_are_validated_like_the_profile_fields() {
    let dev_msg = |dev: &str| {
        format!("`{dev}` is not a device path under /dev/ (letters, digits and `._+:-` between `/`, no `..`)")
    };
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--disk", "ssd0=/dev/sda;touch${IFS}/tmp/PWNED"],
            ["alice", "bob"]
                .map(|h| {
                    format!(
                        "profiles/hosts/{h}.toml:1: disk-devices.ssd0: --disk ssd0=/dev/sda;touch${{IFS}}/tmp/PWNED: {}\n",
                        dev_msg("/dev/sda;touch${IFS}/tmp/PWNED")
                    )
                })
                .concat()
                + "picaboot: 2 problems in the profiles; nothing was written\n",
        ),
        (
            vec!["--disk", "ssd0=/dev/../etc/passwd"],
            ["alice", "bob"]
                .map(|h| {
                    format!(
                        "profiles/hosts/{h}.toml:1: disk-devices.ssd0: --disk ssd0=/dev/../etc/passwd: {}\n",
                        dev_msg("/dev/../etc/passwd")
                    )
                })
                .concat()
                + "picaboot: 2 problems in the profiles; nothing was written\n",
        ),
        (
            vec!["--disk", "ssd0=/dev/sdb"],
            ["alice", "bob"]
                .map(|h| {
                    format!("profiles/hosts/{h}.toml:1: disk-devices.ssd1: --disk: device /dev/sdb is named for two disks (another --disk or the profile already uses it)\n")
                })
                .concat()
                + "picaboot: 2 problems in the profiles; nothing was written\n",
        ),
        (
            vec!["--mirror", "http://x/debian;touch${IFS}/tmp/PWNED"],
            "--mirror:0: install.mirror: `http://x/debian;touch${IFS}/tmp/PWNED`: a mirror URL holds only letters, digits and `._~:/@%+=,-`\n\
             picaboot: 1 problem in the profiles; nothing was written\n"
                .to_string(),
        ),
    ];
    for (args, expected) in cases {
        let scratch = common::scratch_profiles();
        let mut all = vec!["render", "--all", "-o", "out"];
        all.extend(&args);
        let o = common::picaboot(scratch.path(), &all);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&o.stderr), expected, "{args:?}");
        assert!(!scratch.path().join("out").exists(), "{args:?} wrote out/");
    }
}

/// Only regular files are read as profiles: a FIFO (which would block `open` forever) or a
/// device in place of a host profile or site.toml is refused at once, naming the file, exit 1,
/// nothing written; so is a profile over 1 MiB.
#[test]
fn profiles_are_regular_files_of_bounded_size() {
    let cases: &[(&str, &str)] = &[
        ("hosts/carol.toml", "fifo"),
        ("site.toml", "fifo"),
        ("hosts/dave.toml", "device"),
        ("hosts/erin.toml", "large"),
    ];
    for (file, kind) in cases {
        let scratch = common::scratch_profiles();
        let path = scratch.path().join("profiles").join(file);
        let _ = std::fs::remove_file(&path);
        match *kind {
            "fifo" => assert!(std::process::Command::new("mkfifo")
                .arg(&path)
                .status()
                .unwrap()
                .success()),
            "device" => std::os::unix::fs::symlink("/dev/zero", &path).unwrap(),
            _ => std::fs::write(
                &path,
                format!("hostname = \"erin\"\n# {}\n", "a".repeat(50 << 20)),
            )
            .unwrap(),
        }
        let expected = if *kind == "large" {
            format!("picaboot: error: profiles/{file}: larger than 1048576 bytes (profiles are a few KiB)\n")
        } else {
            format!("picaboot: error: profiles/{file}: not a regular file (profiles are read only from regular files)\n")
        };
        for args in [&["check"][..], &["render", "--all", "-o", "out"][..]] {
            // Under timeout(1): the old code blocked in open(2) on the FIFO forever.
            let o = std::process::Command::new("timeout")
                .arg("30")
                .arg(env!("CARGO_BIN_EXE_picaboot"))
                .args(args)
                .current_dir(scratch.path())
                .env_remove("PICABOOT_PROFILES")
                .output()
                .unwrap();
            assert_eq!(o.status.code(), Some(1), "{file} ({kind}): {args:?}");
            assert_eq!(String::from_utf8_lossy(&o.stderr), expected, "{args:?}");
        }
        assert!(!scratch.path().join("out").exists());
    }
}
