//! Image tier: builds tx-debian, tx-apache and tx-nginx with the real tools (debootstrap,
//! overlayfs, unshare), then lets the oracles judge: `umoci unpack`, `skopeo inspect oci:`,
//! podman runs each image and its declared check, buildah builds the rendered Dockerfile FROM
//! the parent picaboot built, and a second clean build gives the same manifest digests.
//!
//! Runs as root (scripts/test). Builds use this machine's apt mirror (`--host-mirror`), one
//! heavy build at a time. A missing tool fails the test and names its Debian package.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use picaboot::image;

/// Fixed SOURCE_DATE_EPOCH for the tests (2025-11-24).
const EPOCH: &str = "1763942400";

/// One debootstrap / apt build at a time (2-core machines).
pub(crate) static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

fn work() -> PathBuf {
    common::root().join("target/picaboot-image-tests")
}

fn tools() {
    for (t, p) in [
        ("debootstrap", "debootstrap"),
        ("unshare", "util-linux"),
        ("skopeo", "skopeo"),
        ("umoci", "umoci"),
        ("podman", "podman"),
        ("runc", "runc"),
        ("buildah", "buildah"),
        ("curl", "curl"),
    ] {
        common::require(t, p);
    }
}

/// A fresh images directory `work()/DIRNAME` holding a copy of tx-debian (the parent) and an
/// empty `IMAGE/` for a spec written by the test.
fn scratch_images(dirname: &str, image: &str) -> PathBuf {
    let dir = work().join(dirname);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join(image)).unwrap();
    common::run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(common::root().join("images/tx-debian"))
            .arg(&dir),
    );
    dir
}

fn picaboot(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_picaboot"))
        .args(args)
        .current_dir(common::root())
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env(
            "PATH",
            format!(
                "{}:/usr/sbin:/sbin",
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .expect("picaboot runs");
    eprintln!(
        "picaboot {}:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Builds NAME with the CLI; returns name -> manifest digest of the images built.
fn build(name: &str, cache: &Path, out: &Path) -> BTreeMap<String, String> {
    build_report(name, cache, out)
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_string(),
                i["manifest"]["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `image build NAME --json`: one object per image of the chain, parents first.
fn build_report(name: &str, cache: &Path, out: &Path) -> Vec<serde_json::Value> {
    let o = picaboot(&[
        "image",
        "build",
        name,
        "--host-mirror",
        "--json",
        "--cache",
        cache.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "build of {name} failed ({})", o.status);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("--json output");
    v.as_array().expect("a JSON array").clone()
}

struct Family {
    cache: PathBuf,
    out: PathBuf,
    digests: BTreeMap<String, String>,
}

/// The first clean build (fresh cache): tx-debian, tx-apache, tx-nginx.
fn family() -> &'static Family {
    static F: OnceLock<Family> = OnceLock::new();
    F.get_or_init(|| {
        tools();
        let _g = heavy();
        let cache = work().join("cache-a");
        let out = work().join("out-a");
        let _ = std::fs::remove_dir_all(&cache);
        let _ = std::fs::remove_dir_all(&out);
        let t = Instant::now();
        let mut digests = build("tx-apache", &cache, &out);
        digests.extend(build("tx-nginx", &cache, &out));
        eprintln!(
            "clean build of the family: {:.1} s",
            t.elapsed().as_secs_f64()
        );
        Family {
            cache,
            out,
            digests,
        }
    })
}

fn images() -> image::Images {
    image::load(&common::root().join("images")).expect("repository images are valid")
}

#[test]
fn skopeo_and_umoci_accept_the_layout() {
    let f = family();
    let layout = f.out.to_str().unwrap();
    for name in ["tx-debian", "tx-apache", "tx-nginx"] {
        let j = common::run_ok(
            Command::new("skopeo").args(["inspect", &format!("oci:{layout}:{name}")]),
        );
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(
            v["Digest"].as_str(),
            Some(f.digests[name].as_str()),
            "{name}"
        );
        assert_eq!(
            v["Labels"]["org.opencontainers.image.title"].as_str(),
            Some(name)
        );
        assert!(v["Labels"]["org.opencontainers.image.revision"].is_string());
        // the oci-archive holds the same image
        let a = common::run_ok(
            Command::new("skopeo")
                .args(["inspect", &format!("oci-archive:{layout}/{name}.oci.tar")]),
        );
        let va: serde_json::Value = serde_json::from_str(&a).unwrap();
        assert_eq!(va["Digest"], v["Digest"]);
    }
    let cfg = common::run_ok(Command::new("skopeo").args([
        "inspect",
        "--config",
        &format!("oci:{layout}:tx-apache"),
    ]));
    let cfg: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    assert!(cfg["config"]["ExposedPorts"]["80/tcp"].is_object(), "{cfg}");
    assert_eq!(cfg["config"]["Cmd"][0], "/usr/bin/supervisord");
    assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 3);

    let bundle = work().join("umoci-bundle");
    let _ = std::fs::remove_dir_all(&bundle);
    common::run_ok(
        Command::new("umoci")
            .args(["unpack", "--image", &format!("{layout}:tx-apache")])
            .arg(&bundle),
    );
    let rootfs = bundle.join("rootfs");
    assert!(rootfs.join("usr/sbin/apache2").is_file());
    assert!(rootfs.join("usr/bin/supervisord").is_file());
    assert!(rootfs.join("var/lib/dpkg/status").is_file());
    for volatile in [
        "var/log/dpkg.log",
        "var/cache/ldconfig/aux-cache",
        "var/log/apt/history.log",
    ] {
        assert!(
            !rootfs.join(volatile).exists(),
            "{volatile} must not be in the image"
        );
    }
    let lists: Vec<_> = std::fs::read_dir(rootfs.join("var/lib/apt/lists"))
        .unwrap()
        .collect();
    assert!(lists.len() <= 1, "apt lists left in the image");
    // the images carry the site's mirror, never the build machine's
    let sources = std::fs::read_to_string(rootfs.join("etc/apt/sources.list")).unwrap();
    let (_, site_mirror) = image::build::site_install(&common::root().join("profiles")).unwrap();
    assert!(sources.contains(&site_mirror), "{sources}");
    let _ = std::fs::remove_dir_all(&bundle);
}

#[test]
fn podman_runs_each_image_and_its_check_passes() {
    let f = family();
    let imgs = images();
    for name in ["tx-debian", "tx-apache", "tx-nginx"] {
        let archive = f.out.join(format!("{name}.oci.tar"));
        let t = Instant::now();
        image::runtest::run_check(&imgs.by_name[name], &archive, &mut |m| eprintln!("{m}"))
            .unwrap_or_else(|e| panic!("{e}"));
        eprintln!("{name}: podman check {:.1} s", t.elapsed().as_secs_f64());
    }
}

/// An unchanged rebuild builds no layer: every image of the chain comes from the cache, with the
/// digest of the first build. (How fast that is, is measured by benches/images.sh, not here.)
#[test]
fn unchanged_rebuild_builds_nothing() {
    let f = family();
    let _g = heavy();
    let built = build_report("tx-apache", &f.cache, &f.out);
    assert!(
        built.iter().any(|i| i["name"] == "tx-apache"),
        "the rebuild did not report tx-apache: {built:?}"
    );
    for i in &built {
        let name = i["name"].as_str().unwrap();
        assert_eq!(
            i["manifest"]["digest"].as_str().unwrap(),
            f.digests[name],
            "{name}: the unchanged rebuild changed the digest"
        );
        assert_eq!(
            i["cached"].as_bool(),
            Some(true),
            "{name}: the unchanged rebuild built a layer again"
        );
    }
}

#[test]
fn two_clean_builds_give_the_same_manifest_digest() {
    let f = family();
    let _g = heavy();
    let cache = work().join("cache-b");
    let out = work().join("out-b");
    let _ = std::fs::remove_dir_all(&cache);
    let _ = std::fs::remove_dir_all(&out);
    let mut d = build("tx-apache", &cache, &out);
    d.extend(build("tx-nginx", &cache, &out));
    for name in ["tx-debian", "tx-apache", "tx-nginx"] {
        if d[name] != f.digests[name] {
            let a = common::run_ok(
                Command::new("skopeo")
                    .args(["inspect", &format!("oci:{}:{name}", f.out.display())]),
            );
            let b = common::run_ok(
                Command::new("skopeo").args(["inspect", &format!("oci:{}:{name}", out.display())]),
            );
            panic!(
                "{name}: {} vs {}\nfirst: {a}\nsecond: {b}",
                f.digests[name], d[name]
            );
        }
    }
    let _ = std::fs::remove_dir_all(&cache);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn dockerfile_builds_with_buildah_from_the_parent_picaboot_built() {
    let f = family();
    let _g = heavy();
    let ctx = work().join("dockerfiles");
    let o = picaboot(&[
        "image",
        "dockerfile",
        "tx-apache",
        "-o",
        ctx.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let dockerfile = std::fs::read_to_string(ctx.join("tx-apache/Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("FROM ${REGISTRY}/tx-debian:latest"),
        "{dockerfile}"
    );
    assert!(ctx
        .join("tx-apache/rootfs/usr/local/bin/apache2-foreground")
        .is_file());
    // the parent, as picaboot built it, into containers-storage
    common::run_ok(Command::new("skopeo").args([
        "copy",
        "-q",
        &format!("oci:{}:tx-debian", f.out.display()),
        "containers-storage:localhost/picaboot-test/tx-debian:latest",
    ]));
    // apt inside buildah's RUN uses this machine's mirror (the image keeps the site's)
    let (suite, _) = image::build::site_install(&common::root().join("profiles")).unwrap();
    let mirror = image::build::host_mirror().expect("this machine has apt sources");
    let sources = work().join("buildah-sources.list");
    std::fs::write(&sources, format!("deb {mirror} {suite} main\n")).unwrap();
    common::run_ok(
        Command::new("buildah")
            .args(["bud", "--isolation", "chroot", "--pull=false"])
            .args(["--build-arg", "REGISTRY=localhost/picaboot-test"])
            .arg("-v")
            .arg(format!("{}:/etc/apt/sources.list:ro", sources.display()))
            .args(["-t", "localhost/picaboot-test/tx-apache-dockerfile:latest"])
            .arg(ctx.join("tx-apache")),
    );
    // and the Docker-built image passes the same check
    let imgs = images();
    image::runtest::run_check_ref(
        &imgs.by_name["tx-apache"],
        "localhost/picaboot-test/tx-apache-dockerfile:latest",
        &mut |m| eprintln!("{m}"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn failing_step_shows_its_command_and_output_tail() {
    let f = family();
    let _g = heavy();
    let dir = scratch_images("images-broken", "broken");
    std::fs::write(
        dir.join("broken/image.toml"),
        "description = \"fails\"\nparent = \"tx-debian\"\nsteps = [\"echo picaboot-boom-tail >&2; exit 7\"]\n[check]\nrun = \"true\"\n",
    )
    .unwrap();
    let o = picaboot(&[
        "image",
        "build",
        "broken",
        "--images",
        dir.to_str().unwrap(),
        "--host-mirror",
        "--cache",
        f.cache.to_str().unwrap(),
        "-o",
        work().join("out-broken").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("[tx-debian] cached"),
        "parent reused from the cache: {err}"
    );
    assert!(err.contains("step 1/1"), "{err}");
    assert!(
        err.contains("exit 7")
            && err.contains("picaboot-boom-tail")
            && err.contains("exit status: 7"),
        "{err}"
    );
}

#[test]
fn unreachable_release_download_fails_naming_the_source() {
    let f = family();
    let _g = heavy();
    let o = picaboot(&[
        "image",
        "build",
        "tx-kanboard",
        "--host-mirror",
        "--cache",
        f.cache.to_str().unwrap(),
        "-o",
        work().join("out-kanboard").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("source unreachable: https://github.com/kanboard/kanboard/"),
        "{err}"
    );
}

#[test]
fn check_reports_bad_image_specs_with_lines() {
    let dir = work().join("images-bad");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bad")).unwrap();
    std::fs::write(
        dir.join("bad/image.toml"),
        "description = \"bad\"\nparent = \"missing\"\nfiles = [{ src = \"nope\", dest = \"etc/x\" }]\n[check]\nrun = \"true\"\n",
    )
    .unwrap();
    let o = picaboot(&["check", "--images", dir.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let d = dir.display();
    assert!(
        err.contains(&format!(
            "{d}/bad/image.toml:2: parent: no image named `missing`"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{d}/bad/image.toml:3: files[0].dest: must be an absolute"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{d}/bad/image.toml:3: files[0].src: {d}/bad/nope does not exist"
        )),
        "{err}"
    );
}

/// mysql-backup and postgres-backup, built on the family's cache.
fn backup_images() -> &'static Path {
    static B: OnceLock<()> = OnceLock::new();
    let f = family();
    B.get_or_init(|| {
        let _g = heavy();
        build("mysql-backup", &f.cache, &f.out);
        build("postgres-backup", &f.cache, &f.out);
    });
    &f.out
}

// A container of a backup image has the database's socket directory and a backup directory
// bind-mounted (the tests run with `--network none`).
use common::Container;

fn start_backup_container(
    name: &str,
    archive: &Path,
    mounts: &[(&Path, &str)],
    env: &[(&str, &str)],
) -> Container {
    let cname = format!("picaboot-test-{name}-{}", std::process::id());
    let _ = Command::new("podman").args(["rm", "-f", &cname]).output();
    let mut cmd = Command::new("podman");
    cmd.args(["run", "-d", "--name", &cname])
        .args(image::runtest::podman_run_args(1024));
    for (host, inside) in mounts {
        cmd.arg("-v").arg(format!("{}:{inside}", host.display()));
    }
    for (k, v) in env {
        cmd.arg("-e").arg(format!("{k}={v}"));
    }
    cmd.arg(format!("oci-archive:{}", archive.display()));
    common::run_ok(&mut cmd);
    Container(cname)
}

fn exec_in(c: &Container, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("podman");
    cmd.arg("exec");
    for (k, v) in env {
        cmd.arg("-e").arg(format!("{k}={v}"));
    }
    cmd.arg(&c.0).args(args);
    cmd.output().expect("podman exec runs")
}

/// The names in `dir`, sorted (backup dumps sort by time).
pub(crate) fn dumps(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed().as_secs() < secs, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

/// Runs the rotation / failure / restore scenario shared by both databases.
fn backup_scenario(
    c: &Container,
    backups: &Path,
    wrong_password: (&str, &str),
    sql: &dyn Fn(&str) -> String,
) {
    // INIT_BACKUP made the first dump before supervisord started
    wait_for("the initial dump", 60, || {
        dumps(backups).iter().any(|d| d.ends_with(".sql.gz"))
    });
    for _ in 0..4 {
        // No pause: dumps made in the same second get distinct names.
        let o = exec_in(c, &["/usr/local/bin/db-backup", "backup"], &[]);
        assert!(
            o.status.success(),
            "backup: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let d = dumps(backups);
    assert_eq!(d.len(), 3, "MAX_BACKUPS=3 keeps exactly 3 dumps: {d:?}");
    // a failing dump is reported and leaves nothing behind
    let o = exec_in(
        c,
        &["/usr/local/bin/db-backup", "backup"],
        &[wrong_password],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("backup FAILED"),
        "{err}"
    );
    assert_eq!(dumps(backups), d, "a failed dump leaves no file");
    // the password is never on a command line: the scripts pass files
    let script =
        std::fs::read_to_string(common::root().join("images/mysql-backup/db-backup")).unwrap();
    assert!(
        !script.contains("--password") && !script.contains("-p\"$"),
        "password on a command line"
    );
    // restore the latest dump after losing the data
    sql("DROP");
    assert!(!sql("SELECT").contains("picaboot-row"), "data dropped");
    let o = exec_in(c, &["/usr/local/bin/db-backup", "restore-latest"], &[]);
    assert!(
        o.status.success(),
        "restore: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(sql("SELECT").contains("picaboot-row"), "data restored");
    // the cron job, run exactly as cron runs it (empty environment, the crontab's command),
    // dumps with the container's settings, which sit in a file only root can read
    let o = exec_in(c, &["stat", "-c", "%a", "/etc/db-backup.env"], &[]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "600");
    let o = exec_in(c, &["supervisorctl", "status", "cron"], &[]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("RUNNING"),
        "cron runs under supervisord"
    );
    let before = dumps(backups);
    let o = exec_in(
        c,
        &[
            "/bin/sh",
            "-c",
            "env -i /bin/sh -c \"$(cut -d' ' -f7- /etc/cron.d/db-backup)\"",
        ],
        &[],
    );
    assert!(
        o.status.success(),
        "cron command: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let after = dumps(backups);
    assert_eq!(after.len(), 3, "{after:?}");
    assert!(
        after.last() > before.last(),
        "the cron command made a new dump: {before:?} -> {after:?}"
    );
}

/// Kills a server the test started when the test ends (pass or fail).
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn mysql_backup_dumps_rotates_and_restores_a_real_mariadb() {
    common::require("mariadbd", "mariadb-server");
    let out = backup_images();
    let dir = work().join("mariadb");
    let _ = std::fs::remove_dir_all(&dir);
    let (data, sock, backups) = (dir.join("data"), dir.join("run"), dir.join("backup"));
    for d in [&data, &sock, &backups] {
        std::fs::create_dir_all(d).unwrap();
    }
    common::run_ok(
        Command::new("mariadb-install-db")
            .args([
                "--no-defaults",
                "--user=root",
                "--skip-test-db",
                "--auth-root-authentication-method=socket",
            ])
            .arg(format!("--datadir={}", data.display())),
    );
    let socket = sock.join("mysqld.sock");
    let server = Command::new("mariadbd")
        .args(["--no-defaults", "--user=root", "--skip-networking"])
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", socket.display()))
        .arg(format!("--pid-file={}", dir.join("pid").display()))
        .arg(format!("--log-error={}", dir.join("error.log").display()))
        .spawn()
        .expect("mariadbd starts");
    let mysql = |q: &str| -> Output {
        Command::new("mariadb")
            .args(["--no-defaults", "-N", "-B"])
            .arg(format!("--socket={}", socket.display()))
            .args(["-e", q])
            .output()
            .expect("mariadb client runs")
    };
    let _server = Kill(server);
    wait_for("mariadbd", 60, || mysql("SELECT 1").status.success());
    let password = "s3cret-with-\"quote'";
    let setup = format!(
        "CREATE USER backup@localhost IDENTIFIED BY '{}'; GRANT ALL ON *.* TO backup@localhost WITH GRANT OPTION; \
         CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v TEXT); INSERT INTO app.t VALUES (1, 'picaboot-row');",
        password.replace('\'', "''")
    );
    let o = mysql(&setup);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let c = start_backup_container(
        "mysql-backup",
        &out.join("mysql-backup.oci.tar"),
        &[(&sock, "/run/mysqld"), (&backups, "/backup")],
        &[
            ("MYSQL_HOST", "localhost"),
            ("MYSQL_SOCKET", "/run/mysqld/mysqld.sock"),
            ("MYSQL_USER", "backup"),
            ("MYSQL_PASSWORD", password),
            ("MAX_BACKUPS", "3"),
            ("INIT_BACKUP", "true"),
        ],
    );
    backup_scenario(
        &c,
        &backups,
        ("MYSQL_PASSWORD", "wrong"),
        &|what| match what {
            "DROP" => {
                assert!(mysql("DROP DATABASE app").status.success());
                String::new()
            }
            _ => String::from_utf8_lossy(&mysql("SELECT v FROM app.t").stdout).into_owned(),
        },
    );
}

#[test]
fn postgres_backup_dumps_rotates_and_restores_a_real_postgresql() {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .max()
        })
        .filter(|p| p.join("postgres").is_file())
        .unwrap_or_else(|| {
            panic!("PostgreSQL server missing: install the Debian package `postgresql`")
        });
    let out = backup_images();
    let dir = work().join("postgres");
    let _ = std::fs::remove_dir_all(&dir);
    let (data, sock, backups) = (dir.join("data"), dir.join("run"), dir.join("backup"));
    for d in [&data, &sock, &backups] {
        std::fs::create_dir_all(d).unwrap();
    }
    let password = "s3cret:with\\colon";
    std::fs::write(dir.join("pw"), password).unwrap();
    common::run_ok(
        Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir),
    );
    let as_pg = |args: &[&str]| -> Command {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).args(args);
        c
    };
    common::run_ok(&mut as_pg(&[
        bin.join("initdb").to_str().unwrap(),
        "-D",
        data.to_str().unwrap(),
        "-U",
        "postgres",
        "--auth-local=scram-sha-256",
        "--auth-host=reject",
        &format!("--pwfile={}", dir.join("pw").display()),
    ]));
    let pg_ctl = bin.join("pg_ctl").display().to_string();
    /// Stops the test's PostgreSQL (pg_ctl, by its data directory) when the test ends.
    struct Stop(String, PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--", &self.0, "-D"])
                .arg(&self.1)
                .args(["stop", "-m", "fast"])
                .output();
        }
    }
    let _server = Stop(pg_ctl.clone(), data.clone());
    common::run_ok(&mut as_pg(&[
        &pg_ctl,
        "-D",
        data.to_str().unwrap(),
        "-l",
        dir.join("server.log").to_str().unwrap(),
        "-w",
        "-o",
        &format!("-k {} -c listen_addresses=''", sock.display()),
        "start",
    ]));
    let psql = |q: &str| -> Output {
        Command::new(bin.join("psql"))
            .args([
                "-h",
                sock.to_str().unwrap(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-tA",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                q,
            ])
            .env("PGPASSWORD", password)
            .output()
            .expect("psql runs")
    };
    wait_for("postgres", 60, || psql("SELECT 1").status.success());
    for q in ["CREATE DATABASE app", "SELECT 1"] {
        let o = psql(q);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let app = |q: &str| -> Output {
        Command::new(bin.join("psql"))
            .args([
                "-h",
                sock.to_str().unwrap(),
                "-U",
                "postgres",
                "-d",
                "app",
                "-tA",
                "-c",
                q,
            ])
            .env("PGPASSWORD", password)
            .output()
            .expect("psql runs")
    };
    let o = app(
        "CREATE TABLE t (id int primary key, v text); INSERT INTO t VALUES (1, 'picaboot-row')",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let c = start_backup_container(
        "postgres-backup",
        &out.join("postgres-backup.oci.tar"),
        &[(&sock, "/run/postgresql"), (&backups, "/backup")],
        &[
            ("POSTGRES_HOST", "/run/postgresql"),
            ("POSTGRES_USER", "postgres"),
            ("POSTGRES_PASSWORD", password),
            ("MAX_BACKUPS", "3"),
            ("INIT_BACKUP", "true"),
        ],
    );
    backup_scenario(
        &c,
        &backups,
        ("POSTGRES_PASSWORD", "wrong"),
        &|what| match what {
            "DROP" => {
                let o = psql("DROP DATABASE app");
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
                String::new()
            }
            _ => String::from_utf8_lossy(&app("SELECT v FROM t").stdout).into_owned(),
        },
    );
}

#[test]
fn push_to_a_registry_on_loopback() {
    common::require("docker-registry", "docker-registry");
    let f = family();
    let dir = work().join("registry");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // a free port on loopback
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.join("config.yml"),
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let server = Command::new("docker-registry")
        .arg("serve")
        .arg(dir.join("config.yml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("docker-registry starts");
    let _server = Kill(server);
    wait_for("the registry", 30, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let dest = format!("127.0.0.1:{port}/picasoft/tx-debian:latest");
    let o = picaboot(&[
        "image",
        "push",
        "tx-debian",
        "--to",
        &dest,
        "--plain-http",
        "--layout",
        f.out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "push failed");
    let j = common::run_ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://{dest}"),
    ]));
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(
        v["Digest"].as_str(),
        Some(f.digests["tx-debian"].as_str()),
        "same manifest digest in the registry"
    );
}

#[test]
fn deletions_reach_umoci_and_podman_as_whiteouts() {
    let f = family();
    let _g = heavy();
    let dir = scratch_images("images-deleter", "deleter");
    let check = "test ! -e /etc/issue.net && test \"$(ls /usr/share/doc/cron)\" = x";
    std::fs::write(
        dir.join("deleter/image.toml"),
        format!(
            "description = \"deletes a file and replaces a directory of its parent\"\nparent = \"tx-debian\"\n\
             steps = [\"rm /etc/issue.net && rm -r /usr/share/doc/cron && mkdir /usr/share/doc/cron && echo new > /usr/share/doc/cron/x\"]\n\
             [check]\nrun = {}\n",
            serde_json::to_string(check).unwrap()
        ),
    )
    .unwrap();
    let out = work().join("out-deleter");
    let _ = std::fs::remove_dir_all(&out);
    let o = picaboot(&[
        "image",
        "build",
        "deleter",
        "--images",
        dir.to_str().unwrap(),
        "--host-mirror",
        "--cache",
        f.cache.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    // the layer itself: one whiteout, one opaque directory
    let j = common::run_ok(
        Command::new("skopeo").args(["inspect", &format!("oci:{}:deleter", out.display())]),
    );
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    let top = v["Layers"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    let blob = std::fs::File::open(image::oci::blob_path(&out, &top)).unwrap();
    let mut names = Vec::new();
    for e in tar::Archive::new(flate2::read::GzDecoder::new(blob))
        .entries()
        .unwrap()
    {
        names.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
    }
    assert!(
        names.contains(&"etc/.wh.issue.net".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"usr/share/doc/cron/.wh..wh..opq".to_string()),
        "{names:?}"
    );
    let mut sorted = names.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "each path once");
    // umoci applies it
    let bundle = work().join("umoci-deleter");
    let _ = std::fs::remove_dir_all(&bundle);
    common::run_ok(
        Command::new("umoci")
            .args(["unpack", "--image", &format!("{}:deleter", out.display())])
            .arg(&bundle),
    );
    assert!(!bundle.join("rootfs/etc/issue.net").exists());
    assert!(bundle.join("rootfs/etc/issue").exists());
    let doc: Vec<_> = std::fs::read_dir(bundle.join("rootfs/usr/share/doc/cron"))
        .unwrap()
        .collect();
    assert_eq!(doc.len(), 1);
    let _ = std::fs::remove_dir_all(&bundle);
    // podman applies it
    let imgs = image::load(&dir).unwrap();
    image::runtest::run_check(
        &imgs.by_name["deleter"],
        &out.join("deleter.oci.tar"),
        &mut |m| eprintln!("{m}"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_failing_check_exits_3() {
    let f = family();
    let _g = heavy();
    let dir = scratch_images("images-failcheck", "failcheck");
    std::fs::write(
        dir.join("failcheck/image.toml"),
        "description = \"its check fails\"\nparent = \"tx-debian\"\n[check]\nrun = \"echo picaboot-check-output; false\"\ntimeout = 2\n",
    )
    .unwrap();
    let o = picaboot(&[
        "image",
        "test",
        "failcheck",
        "--images",
        dir.to_str().unwrap(),
        "--host-mirror",
        "--cache",
        f.cache.to_str().unwrap(),
        "-o",
        work().join("out-failcheck").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("did not pass within 2 s"), "{err}");
}

#[test]
fn supervisord_restarts_a_killed_program() {
    let f = family();
    let name = format!("picaboot-test-restart-{}", std::process::id());
    let _ = Command::new("podman").args(["rm", "-f", &name]).output();
    common::run_ok(
        Command::new("podman")
            .args(["run", "-d", "--name", &name])
            .args(image::runtest::podman_run_args(8192))
            .arg(format!(
                "oci-archive:{}",
                f.out.join("tx-apache.oci.tar").display()
            )),
    );
    let c = Container(name);
    let pid = |c: &Container| -> String {
        let o = exec_in(c, &["supervisorctl", "pid", "apache2"], &[]);
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let running = |c: &Container| {
        let o = exec_in(c, &["supervisorctl", "status", "apache2"], &[]);
        String::from_utf8_lossy(&o.stdout).contains("RUNNING")
    };
    wait_for("apache2 RUNNING", 60, || running(&c));
    let first = pid(&c);
    assert!(first.parse::<u32>().is_ok_and(|p| p > 1), "pid {first}");
    let o = exec_in(&c, &["kill", "-9", &first], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    wait_for("apache2 restarted", 60, || running(&c) && pid(&c) != first);
    wait_for("apache2 answering again", 30, || {
        exec_in(
            &c,
            &["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1/"],
            &[],
        )
        .status
        .success()
    });
}
