//! A closed stdout is not an error (issue 21): `check`, `cluster form --dry-run` and
//! `render --all --json` whose reader went away exit 0 quietly, never 70 ("internal error")
//! or 134/101 (a panic in `println!`).

use crate::common;

use std::process::{Command, Stdio};

/// The three commands, as argument lists run in a scratch copy of the profiles.
fn commands(out: &str) -> Vec<Vec<String>> {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        v(&["check"]),
        v(&["cluster", "form", "picasoft", "--dry-run"]),
        v(&["render", "--all", "--json", "-o", out]),
    ]
}

/// Deterministic: stdout is a pipe whose read end is already closed, so the first write
/// fails with EPIPE every time.
#[test]
fn a_pipe_closed_before_the_first_write_exits_zero_quietly() {
    let dir = common::scratch_profiles();
    let out = dir.path().join("out");
    for args in commands(out.to_str().unwrap()) {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = Command::new(env!("CARGO_BIN_EXE_picaboot"))
            .args(&args)
            .current_dir(dir.path())
            .env_remove("PICABOOT_PROFILES")
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("internal error") && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
    }
}

/// As a user types it: `picaboot … | head -1`, a hundred times each, with picaboot's own
/// status read from PIPESTATUS (0, or 141 if it died of SIGPIPE).
#[test]
fn head_dash_one_a_hundred_times_in_a_row() {
    let dir = common::scratch_profiles();
    let out = dir.path().join("out");
    for args in commands(out.to_str().unwrap()) {
        let o = Command::new("bash")
            .arg("-c")
            .arg(
                r#"bin=$1; shift
                for i in $(seq 100); do
                  "$bin" "$@" 2>>"$ERRLOG" | head -1 >/dev/null
                  echo "${PIPESTATUS[0]}"
                done"#,
            )
            .arg("bash")
            .arg(env!("CARGO_BIN_EXE_picaboot"))
            .args(&args)
            .env("ERRLOG", dir.path().join("stderr.log"))
            .current_dir(dir.path())
            .env_remove("PICABOOT_PROFILES")
            .output()
            .unwrap();
        let statuses = String::from_utf8_lossy(&o.stdout);
        let statuses: Vec<&str> = statuses.lines().collect();
        assert_eq!(statuses.len(), 100, "{args:?}");
        let bad: Vec<&&str> = statuses
            .iter()
            .filter(|s| **s != "0" && **s != "141")
            .collect();
        let stderr = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
        assert!(bad.is_empty(), "{args:?}: statuses {bad:?}\n{stderr}");
        assert!(
            !stderr.contains("internal error") && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
    }
}
