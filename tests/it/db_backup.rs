//! The DB-backup path of the services stack under podman, as `picaboot test services` check 7
//! runs it in the swarm: tx-mariadb started with a random root password in a file at
//! `/run/secrets/mysql-root` (where a swarm secret lands), then mysql-backup in the same
//! network namespace reaching it over TCP with `MYSQL_PASSWORD_FILE` = that file and
//! `MAX_BACKUPS=3`, its `BACKUP_DIR` a host directory pre-seeded with three older dumps named
//! the way `db-backup` names them. Afterwards exactly three dumps remain, the oldest is gone and
//! the newest is a gzip (`gzip -t`) holding a MariaDB dump whose header names the client and the
//! server that made it. Without the password file tx-mariadb does not start mariadbd and says
//! why. Both images are built by the library's builder on the shared test cache.

use crate::common::{self, Container};
use crate::images::dumps;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use picaboot::image::build::BuildMirror;
use picaboot::services::test_registry;

/// Where the secret lands in a swarm task (and where tx-mariadb looks by default).
const SECRET: &str = "/run/secrets/mysql-root";

/// tx-mariadb and mysql-backup built once for this module; their OCI archives' directory.
fn built() -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        common::require("podman", "podman");
        common::require("runc", "runc");
        common::require("debootstrap", "debootstrap");
        common::sbin_path();
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("db-backup-images");
        for name in ["tx-mariadb", "mysql-backup"] {
            let t = Instant::now();
            test_registry::build_image(
                &common::root().join("images"),
                &common::root().join("profiles"),
                name,
                &out,
                BuildMirror::Host,
                Some(common::shared_cache()),
            )
            .unwrap_or_else(|e| panic!("building {name}: {e}"));
            eprintln!("build of {name}: {:.1} s", t.elapsed().as_secs_f64());
        }
        out
    })
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `podman run -d` of `image` with the machine's podman flags, `network` instead of `none`.
fn run(tag: &str, image: &str, network: &str, extra: &[String]) -> Container {
    let name = format!("picaboot-db-{tag}-{}", std::process::id());
    let _ = Command::new("podman").args(["rm", "-f", &name]).output();
    let mut args = picaboot::image::runtest::podman_run_args(1024);
    let net = args.iter().position(|a| a == "--network").unwrap();
    args[net + 1] = network.to_string();
    let mut cmd = Command::new("podman");
    cmd.args(["run", "-d", "--name", &name])
        .args(args)
        .args(extra)
        .arg(format!(
            "oci-archive:{}",
            built().join(format!("{image}.oci.tar")).display()
        ));
    common::run_ok(&mut cmd);
    Container(name)
}

fn exec(c: &Container, script: &str) -> Output {
    Command::new("podman")
        .args(["exec", &c.0, "/bin/sh", "-c", script])
        .output()
        .expect("podman exec runs")
}

fn logs(c: &Container) -> String {
    text(
        &Command::new("podman")
            .args(["logs", &c.0])
            .output()
            .unwrap(),
    )
}

fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed().as_secs() < secs, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
    t.elapsed()
}

/// SQL through the mariadb client inside `c`, as root over TCP on 127.0.0.1 with the password
/// from the secret file (an option file, never a command line).
fn sql(c: &Container, query: &str) -> Output {
    exec(
        c,
        &format!(
            "f=$(mktemp) && printf '[client]\\nhost=127.0.0.1\\nuser=root\\nskip-ssl\\npassword=\"%s\"\\n' \"$(cat {SECRET})\" >\"$f\" && mariadb --defaults-extra-file=\"$f\" -N -B -e \"{query}\"; rc=$?; rm -f \"$f\"; exit $rc"
        ),
    )
}

/// A random password (hex) in a mode-0600 file.
fn password_file(dir: &Path) -> (PathBuf, String) {
    let pw = test_registry::random_password().unwrap();
    let path = dir.join("mysql-root");
    std::fs::write(&path, format!("{}\n", pw.expose())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (path, pw.expose().to_string())
}

/// The `date` format `db-backup` names its dumps with (`name="$(date -u +FORMAT).sql.gz"`),
/// read from the script itself.
fn dump_name_format() -> String {
    let script =
        std::fs::read_to_string(common::root().join("images/mysql-backup/db-backup")).unwrap();
    let line = script
        .lines()
        .find(|l| l.contains("name=\"$(date -u +") && l.contains(").sql.gz\""))
        .expect("db-backup names its dumps with date -u");
    let from = line.find("date -u +").unwrap() + "date -u +".len();
    let to = line[from..].find(')').unwrap() + from;
    line[from..to].to_string()
}

/// Three older dumps (one, two and three days ago) in `dir`, named like db-backup's, each a
/// small gzip; returned oldest first.
fn seed_old_dumps(dir: &Path) -> Vec<String> {
    let fmt = dump_name_format();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut names = Vec::new();
    for days in [3u64, 2, 1] {
        let at = format!("@{}", now - days * 86400);
        let o = common::run_ok(Command::new("date").args(["-u", "-d", &at, &format!("+{fmt}")]));
        let name = format!("{}.sql.gz", o.trim());
        let path = dir.join(&name);
        common::run_ok(
            Command::new("sh")
                .args(["-c", "echo '-- seeded older dump' | gzip -n > \"$1\"", "sh"])
                .arg(&path),
        );
        names.push(name);
    }
    names
}

/// tx-mariadb with `pw_file` at the secret's path; waits until root answers over TCP.
fn start_mariadb(pw_file: &Path) -> Container {
    let t = Instant::now();
    let c = run(
        "mariadb",
        "tx-mariadb",
        "none",
        &["-v".into(), format!("{}:{SECRET}:ro", pw_file.display())],
    );
    wait_for("tx-mariadb to answer SELECT 1 over TCP", 120, || {
        String::from_utf8_lossy(&sql(&c, "SELECT 1").stdout).trim() == "1"
    });
    eprintln!(
        "tx-mariadb: podman run to SELECT 1 over TCP: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    c
}

#[test]
fn mysql_backup_dumps_tx_mariadb_with_the_secret_and_keeps_three() {
    built();
    let t = tempfile::tempdir().unwrap();
    let (pw_file, pw) = password_file(t.path());
    let db = start_mariadb(&pw_file);
    let o = sql(
        &db,
        "CREATE DATABASE app; CREATE TABLE app.t (v TEXT); INSERT INTO app.t VALUES ('picaboot-row'); SELECT VERSION();",
    );
    assert!(o.status.success(), "{}", text(&o));
    let server_version = String::from_utf8_lossy(&o.stdout).trim().to_string();
    // The init file that carried the password to the server is gone once it answers.
    wait_for("the init file to be removed", 30, || {
        exec(&db, "test -e /run/mysqld/init.sql").status.code() == Some(1)
    });

    let backups = t.path().join("backup");
    std::fs::create_dir_all(&backups).unwrap();
    let seeded = seed_old_dumps(&backups);
    let env = [
        "MYSQL_HOST=127.0.0.1".to_string(),
        format!("MYSQL_PASSWORD_FILE={SECRET}"),
        "MAX_BACKUPS=3".into(),
        "INIT_BACKUP=true".into(),
        "BACKUP_DIR=/backup".into(),
    ];
    let mut extra = vec![
        "-v".to_string(),
        format!("{}:{SECRET}:ro", pw_file.display()),
        "-v".into(),
        format!("{}:/backup", backups.display()),
    ];
    for e in env {
        extra.extend(["-e".to_string(), e]);
    }
    let t0 = Instant::now();
    let bk = run(
        "backup",
        "mysql-backup",
        &format!("container:{}", db.0),
        &extra,
    );
    wait_for("the initial dump and the rotation", 120, || {
        let d = dumps(&backups);
        d.len() == 3
            && d.iter().any(|n| !seeded.contains(n))
            && !d.iter().any(|n| n.ends_with(".partial"))
    });
    eprintln!(
        "mysql-backup: podman run to rotated dump: {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let d = dumps(&backups);
    assert!(!d.contains(&seeded[0]), "the oldest dump is gone: {d:?}");
    assert_eq!(
        &d[..2],
        &seeded[1..],
        "the two newer seeded dumps stay: {d:?}"
    );
    let newest = backups.join(&d[2]);
    common::run_ok(Command::new("gzip").arg("-t").arg(&newest));
    let dump = common::run_ok(Command::new("zcat").arg(&newest));
    let client =
        common::run_ok(Command::new("podman").args(["exec", &bk.0, "mariadb-dump", "--version"]));
    let (distrib, client_ver) = dump_header_versions(&client);
    // The first line names the client version and the server package version ("-- MariaDB dump
    // 10.19  Distrib 10.11.6-MariaDB, …" before 11, "-- MariaDB dump 10.19-11.8.3-MariaDB, …"
    // since): both asked, not written here.
    // (MariaDB 11 puts its sandbox-mode comment line before it.)
    let header = dump
        .lines()
        .take(3)
        .find(|l| l.starts_with("-- MariaDB dump "))
        .unwrap_or_else(|| panic!("no dump header in {:?}", &dump[..dump.len().min(300)]));
    assert!(
        header.contains(&client_ver) && header.contains(&distrib),
        "{header:?} does not name mariadb-dump {client_ver} from {distrib}"
    );
    assert!(
        dump.contains(&format!("-- Server version\t{server_version}")),
        "{}",
        &dump[..dump.len().min(600)]
    );
    assert!(
        dump.contains("picaboot-row") && dump.contains("-- Dump completed"),
        "incomplete dump"
    );
    // The password is in neither container's log.
    for c in [&db, &bk] {
        assert!(!logs(c).contains(&pw), "the password is in {}'s log", c.0);
    }
    drop(bk);
}

/// `mariadb-dump --version`: "mariadb-dump from 11.8.3-MariaDB, client 10.19 for …" ->
/// ("11.8.3-MariaDB", "10.19").
fn dump_header_versions(version: &str) -> (String, String) {
    let after = |key: &str| {
        version
            .split(key)
            .nth(1)
            .and_then(|r| r.split([',', ' ']).next())
            .unwrap_or_else(|| panic!("no `{key}` in {version}"))
            .to_string()
    };
    (after("from "), after("client "))
}

#[test]
fn tx_mariadb_passes_its_check_and_refuses_to_start_without_the_password_file() {
    built();
    let specs = picaboot::image::load(&common::root().join("images")).unwrap();
    let t = Instant::now();
    picaboot::image::runtest::run_check(
        &specs.by_name["tx-mariadb"],
        &built().join("tx-mariadb.oci.tar"),
        &mut |m| eprintln!("{m}"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "tx-mariadb declared check: {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let c = run("bare", "tx-mariadb", "none", &[]);
    let why = format!(
        "mariadb-foreground: refusing to start: the root password file {SECRET} is missing"
    );
    wait_for("the refusal in the log", 60, || logs(&c).contains(&why));
    wait_for("supervisord to give up on mariadb", 60, || {
        text(&exec(&c, "supervisorctl status mariadb")).contains("FATAL")
    });
    let o = exec(&c, "pgrep -x mariadbd");
    assert_eq!(o.status.code(), Some(1), "mariadbd runs: {}", text(&o));
    let o = exec(&c, "ls -A /var/lib/mysql");
    assert!(
        o.status.success() && o.stdout.is_empty(),
        "a datadir was initialised: {}",
        text(&o)
    );
}
