//! `picaboot image test`: build, then run each image's declared check here (podman) or in
//! one QEMU guest (`--vm`), and report.

use anyhow::Context;

use super::{build_one, options, TestConfig};
use crate::image;

/// Runs `image test`.
pub(super) fn test(t: TestConfig) -> anyhow::Result<()> {
    // Ctrl-C and SIGTERM remove what the run owns (containers, VM disks) before exiting.
    crate::cleanup::on_signals();
    let mut progress = |m: &str| crate::progress::event(m);
    let mut under_test = Vec::new();
    let mut host_failures = Vec::new();
    let json = t.opts.json;
    let mut checks: Vec<serde_json::Value> = Vec::new();
    let mut all_built = Vec::new();
    for name in &t.names {
        let (images, built) = build_one(name, &t.opts, !json)?;
        all_built.extend(built.iter().cloned());
        let last = built.last().expect("build returns the image itself");
        let img = &images.by_name[&last.name];
        if t.vm {
            under_test.push(crate::qemu::podman::ImageUnderTest {
                name: last.name.clone(),
                archive: last.archive.clone(),
                check: img.spec.check.run.clone(),
                timeout_s: img.spec.check.timeout,
                nofile: img.spec.check.nofile,
            });
            continue;
        }
        match image::runtest::run_check(img, &last.archive, &mut progress) {
            Ok(_) => {
                checks.push(serde_json::json!({"name": format!("{}-check", last.name), "passed": true, "detail": ""}));
                if !json {
                    outln!("{}: check passed", last.name)?;
                }
            }
            // A check that ran and failed is a result; anything else stops the run.
            Err(e)
                if crate::exit_class::ExitClass::exit_class(&e)
                    == crate::exit_class::Class::Test =>
            {
                checks.push(serde_json::json!({"name": format!("{}-check", last.name), "passed": false, "detail": e.to_string()}));
                if !json {
                    eprintln!("picaboot: {e}");
                }
                host_failures.push(last.name.clone());
            }
            Err(other) => return Err(other.into()),
        }
    }
    if !t.vm {
        if json {
            outln!(
                "{}",
                serde_json::json!({"images": all_built, "vm": false, "checks": checks})
            )?;
        }
        return if host_failures.is_empty() {
            Ok(())
        } else {
            Err(
                crate::cli::TestFailed(format!("failed checks: {}", host_failures.join(", ")))
                    .into(),
            )
        };
    }
    in_vm(&t, &under_test, all_built, &mut progress)
}

/// `--vm`: every image's check in one QEMU guest; the JUnit report; the verdict.
fn in_vm(
    t: &TestConfig,
    under_test: &[crate::qemu::podman::ImageUnderTest],
    all_built: Vec<image::build::Built>,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    let json = t.opts.json;
    let opts = options(&t.opts)?;
    let work = t.opts.out.join("image-test-vm");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let run = crate::qemu::podman::run(
        under_test,
        t.runtime,
        &opts.suite,
        &opts.build_mirror,
        &work,
        progress,
    )
    .context("running the image test VM")?;
    let junit = t
        .junit
        .clone()
        .unwrap_or_else(|| t.opts.out.join("image-test.junit.xml"));
    std::fs::write(&junit, run.report.junit("image-test", run.seconds))
        .with_context(|| format!("writing {}", junit.display()))?;
    if json {
        let checks: Vec<serde_json::Value> = run
            .report
            .checks
            .iter()
            .map(|c| serde_json::json!({"name": c.name, "passed": c.passed, "detail": c.detail}))
            .collect();
        outln!(
            "{}",
            serde_json::json!({
                "images": all_built, "vm": true, "runtime": format!("{:?}", t.runtime).to_lowercase(),
                "checks": checks, "seconds": run.seconds, "accel": run.accel,
                "console": run.console, "junit": junit,
            })
        )?;
    } else {
        for c in &run.report.checks {
            outln!(
                "{} {} {}",
                if c.passed { "PASS" } else { "FAIL" },
                c.name,
                c.detail
            )?;
        }
        outln!(
            "image test VM: {} checks in {:.0} s ({}); console {}; JUnit {}",
            run.report.checks.len(),
            run.seconds,
            run.accel,
            run.console.display(),
            junit.display()
        )?;
    }
    let failures = run.report.failures();
    if failures.is_empty() {
        Ok(())
    } else {
        let names: Vec<String> = failures
            .iter()
            .map(|f| format!("{} ({})", f.name, f.detail))
            .collect();
        Err(crate::cli::TestFailed(format!("failed: {}", names.join("; "))).into())
    }
}
