//! `render` and `netboot` killed with SIGKILL after a random delay, many times: after each
//! kill every published tree is either the complete previous tree or the complete new one
//! (never partial), the next run succeeds with identical bytes (caches are never poisoned), and
//! a clean run removes what the killed ones left beside the trees (`.NAME.tmp-*`).
//! `image build` the same way over a cold build of tx-debian (debootstrap, packing, commit):
//! after each kill nothing of the build runs on, the OCI layout is never partial, and the
//! build that follows in the same cache gives the digest of a clean build in a cache of its own.

use crate::common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// A tree as `relative path -> (sha256 or link target, mode)`.
type Snapshot = BTreeMap<String, (String, u32)>;

fn snapshot(root: &Path) -> Option<Snapshot> {
    fn walk(root: &Path, dir: &Path, out: &mut Snapshot) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let mode = meta.permissions().mode();
            if meta.is_dir() {
                out.insert(format!("{rel}/"), (String::new(), mode));
                walk(root, &p, out);
            } else if meta.file_type().is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                out.insert(rel, (t.to_string_lossy().into_owned(), mode));
            } else {
                let h = hex::encode(Sha256::digest(std::fs::read(&p).unwrap()));
                out.insert(rel, (h, mode));
            }
        }
    }
    if !root.exists() {
        return None;
    }
    let mut out = Snapshot::new();
    walk(root, root, &mut out);
    Some(out)
}

/// `.NAME.tmp-*` entries left in `dir`.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.') && n.contains(".tmp-"))
                .collect()
        })
        .unwrap_or_default()
}

/// A small deterministic generator (the seed is printed, so a failure can be replayed).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

fn seed() -> u64 {
    std::env::var("PICABOOT_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

/// Runs picaboot and SIGKILLs it after `delay` (if still running); true when it was killed.
fn run_killed(cwd: &Path, args: &[&str], env: &[(&str, &Path)], delay: Duration) -> bool {
    let mut c = Command::new(env!("CARGO_BIN_EXE_picaboot"));
    c.args(args)
        .current_dir(cwd)
        .env_remove("PICABOOT_PROFILES")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "picaboot {args:?} failed without being killed"
            );
            return false;
        }
        if t0.elapsed() >= delay {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs picaboot to its end, which must be a success; returns its stdout and how long it took.
fn run_to_end(cwd: &Path, args: &[&str], env: &[(&str, &Path)]) -> (Vec<u8>, Duration) {
    let t0 = Instant::now();
    let mut c = Command::new(env!("CARGO_BIN_EXE_picaboot"));
    c.args(args)
        .current_dir(cwd)
        .env_remove("PICABOOT_PROFILES");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "picaboot {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    (o.stdout, t0.elapsed())
}

fn run_ok(cwd: &Path, args: &[&str], env: &[(&str, &Path)]) -> Duration {
    run_to_end(cwd, args, env).1
}

#[test]
fn render_killed_at_random_points_publishes_whole_trees_only() {
    let scratch = common::scratch_profiles();
    let cwd = scratch.path();
    let host_file = cwd.join("profiles/hosts/alice.toml");
    let a = std::fs::read_to_string(&host_file).unwrap();
    // A spare routed set's description: it lands in rc.local (a set a VM holds is described
    // by its owner instead).
    let b = a.replacen("\"spare\"", "\"spare, variant B\"", 1);
    assert_ne!(a, b);
    // The two complete trees each variant renders to.
    let mut golden = Vec::new();
    for (i, text) in [&a, &b].iter().enumerate() {
        std::fs::write(&host_file, text).unwrap();
        let out = cwd.join(format!("golden-{i}"));
        run_ok(cwd, &["render", "--all", "-o", out.to_str().unwrap()], &[]);
        golden.push((
            snapshot(&out.join("alice")).unwrap(),
            snapshot(&out.join("bob")).unwrap(),
        ));
    }
    assert_ne!(golden[0].0, golden[1].0);

    let out = cwd.join("out");
    let out_s = out.to_str().unwrap().to_string();
    std::fs::write(&host_file, &a).unwrap();
    let took = run_ok(cwd, &["render", "--all", "-o", &out_s], &[]);
    let seed = seed();
    let mut rng = Lcg(seed);
    let (mut kills, mut max_left) = (0, 0);
    let window = (took.as_millis() as u64 * 3 / 2).max(20);
    for round in 0..60 {
        let variant = round % 2;
        std::fs::write(&host_file, [&a, &b][variant]).unwrap();
        let delay = Duration::from_millis(rng.below(window));
        if run_killed(cwd, &["render", "--all", "-o", &out_s], &[], delay) {
            kills += 1;
        }
        for (host, idx) in [("alice", 0), ("bob", 1)] {
            let now = snapshot(&out.join(host)).expect("a published tree never disappears");
            let whole = golden
                .iter()
                .any(|g| if idx == 0 { g.0 == now } else { g.1 == now });
            assert!(
                whole,
                "round {round} (seed {seed}, delay {delay:?}): {host} is a partial tree"
            );
        }
        max_left = max_left.max(leftovers(&out).len());
        // The next run succeeds and gives exactly this variant's bytes.
        run_ok(cwd, &["render", "--all", "-o", &out_s], &[]);
        assert_eq!(
            snapshot(&out.join("alice")).unwrap(),
            golden[variant].0,
            "round {round}"
        );
        assert_eq!(
            leftovers(&out),
            Vec::<String>::new(),
            "round {round}: a clean run left debris"
        );
    }
    eprintln!(
        "render: 60 runs ({kills} killed, delays below {window} ms, seed {seed}): every tree whole; at most {max_left} leftovers after a kill, none after the next run"
    );
    assert!(
        kills >= 15,
        "too few runs were killed ({kills}): the delays are too long"
    );
}

/// What netboot and reinstall wrote in `OUT/HOST/` survives renders killed at any point:
/// after each kill it is in the tree or in the swapped-out tree beside it, and after the next
/// whole render it is back in the tree, unchanged, with nothing left beside.
#[test]
fn render_killed_at_random_points_never_loses_netboot_or_known_hosts() {
    let scratch = common::scratch_profiles();
    let cwd = scratch.path();
    let out = cwd.join("out");
    let out_s = out.to_str().unwrap().to_string();
    let took = run_ok(cwd, &["render", "alice", "-o", &out_s], &[]);
    let host = out.join("alice");
    // netboot's tree as `netboot` publishes it (its own staged swap), reinstall's records.
    let mut nb = picaboot::output::Tree::new();
    nb.add("boot.ipxe", "#!ipxe\nexit\n", 0o644).unwrap();
    nb.add("initrd.gz", vec![3u8; 65536], 0o644).unwrap();
    let nb_dir = picaboot::netboot::target_dir(&out, "alice");
    picaboot::output::publish(vec![picaboot::output::stage(&nb, &nb_dir).unwrap()]).unwrap();
    std::fs::write(host.join("known_hosts"), "alice ssh-ed25519 AAAA\n").unwrap();
    std::fs::write(host.join("install-syslog.log"), "phase done\n").unwrap();
    let theirs = |dir: &Path| {
        (
            snapshot(&dir.join("netboot")),
            std::fs::read(dir.join("known_hosts")).ok(),
            std::fs::read(dir.join("install-syslog.log")).ok(),
        )
    };
    let want = theirs(&host);
    assert!(want.0.is_some() && want.1.is_some() && want.2.is_some());
    let seed = seed();
    let mut rng = Lcg(seed);
    let window = (took.as_millis() as u64 * 3 / 2).max(20);
    let mut kills = 0;
    for round in 0..40 {
        let delay = Duration::from_millis(rng.below(window));
        if run_killed(cwd, &["render", "alice", "-o", &out_s], &[], delay) {
            kills += 1;
        }
        // Each entry whole in the tree or in one tree beside it (a kill can fall between
        // two carries).
        let dirs: Vec<_> = std::iter::once(host.clone())
            .chain(leftovers(&out).iter().map(|n| out.join(n)))
            .map(|d| theirs(&d))
            .collect();
        let somewhere = dirs.iter().any(|t| t.0 == want.0)
            && dirs.iter().any(|t| t.1 == want.1)
            && dirs.iter().any(|t| t.2 == want.2);
        assert!(
            somewhere,
            "round {round} (seed {seed}, delay {delay:?}): netboot/known_hosts lost"
        );
        run_ok(cwd, &["render", "alice", "-o", &out_s], &[]);
        assert!(theirs(&host) == want, "round {round} (seed {seed})");
        assert_eq!(leftovers(&out), Vec::<String>::new(), "round {round}");
    }
    eprintln!(
        "render with netboot/known_hosts: 40 runs ({kills} killed, seed {seed}): nothing lost"
    );
    assert!(kills >= 10, "too few runs were killed ({kills})");
}

#[test]
fn netboot_killed_at_random_points_never_poisons_the_cache() {
    common::sbin_path();
    common::require("gpgv", "gpgv");
    common::require("depmod", "kmod");
    let scratch = common::scratch_profiles();
    let cwd = scratch.path();
    let cache: PathBuf = common::shared_cache();
    let env: [(&str, &Path); 1] = [("PICABOOT_CACHE", &cache)];
    let args = |out: &str| -> Vec<String> {
        ["netboot", "alice", "--mirror", "apt", "-o", out]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let out = cwd.join("out");
    let out_s = out.to_str().unwrap().to_string();
    let a: Vec<String> = args(&out_s);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    // A first run fills the cache (or finds it warm) and gives the reference tree; the second,
    // warm one gives the duration the kills are spread over.
    run_ok(cwd, &a, &env);
    let took = run_ok(cwd, &a, &env);
    let tree = out.join("alice/netboot");
    let want = snapshot(&tree).unwrap();
    let seed = seed();
    let mut rng = Lcg(seed);
    let mut kills = 0;
    // Runs vary in length on a loaded machine (a delay past a quicker run kills nothing):
    // rounds go on until 3 runs were killed, 12 at most; every round checks the tree.
    let mut rounds = 0;
    for round in 0..12 {
        if kills >= 3 && round >= 6 {
            break;
        }
        rounds += 1;
        let delay = Duration::from_millis(rng.below(took.as_millis() as u64));
        if run_killed(cwd, &a, &env, delay) {
            kills += 1;
        }
        assert_eq!(
            snapshot(&tree).as_ref(),
            Some(&want),
            "round {round} (seed {seed}, delay {delay:?}): the netboot tree is not whole"
        );
        run_ok(cwd, &a, &env);
        assert_eq!(
            snapshot(&tree).unwrap(),
            want,
            "round {round}: different bytes after a kill"
        );
        assert_eq!(
            leftovers(&out.join("alice")),
            Vec::<String>::new(),
            "round {round}: debris"
        );
    }
    eprintln!("netboot: {rounds} runs ({kills} killed, seed {seed}): tree whole after each, identical bytes on the next run");
    assert!(
        kills >= 3,
        "too few runs were killed ({kills} of {rounds}): the delays are too long"
    );
}

/// Every blob the layout's index reaches (manifests, configs, layers) is present with its
/// digest; `Err` names the first that is not.
fn layout_complete(dir: &Path) -> Result<(), String> {
    use sha2::{Digest, Sha256};
    let read = |d: &str| -> Result<Vec<u8>, String> {
        let hex = d.strip_prefix("sha256:").ok_or(format!("digest {d}"))?;
        let b =
            std::fs::read(dir.join("blobs/sha256").join(hex)).map_err(|e| format!("{d}: {e}"))?;
        if hex::encode(Sha256::digest(&b)) != hex {
            return Err(format!("{d}: content does not match"));
        }
        Ok(b)
    };
    let index = std::fs::read(dir.join("index.json")).map_err(|e| format!("index.json: {e}"))?;
    let mut todo: Vec<serde_json::Value> =
        vec![serde_json::from_slice(&index).map_err(|e| e.to_string())?];
    while let Some(doc) = todo.pop() {
        let mut refs: Vec<&serde_json::Value> = Vec::new();
        for key in ["manifests", "layers"] {
            refs.extend(doc[key].as_array().into_iter().flatten());
        }
        refs.extend(doc.get("config"));
        for r in refs {
            let d = r["digest"]
                .as_str()
                .ok_or("a descriptor without a digest")?;
            let b = read(d)?;
            if r["mediaType"]
                .as_str()
                .is_some_and(|m| m.ends_with("manifest.v1+json") || m.ends_with("index.v1+json"))
            {
                todo.push(serde_json::from_slice(&b).map_err(|e| format!("{d}: {e}"))?);
            }
        }
    }
    Ok(())
}

fn built_digest(cwd: &Path, args: &[&str], env: &[(&str, &Path)]) -> (String, Duration) {
    let args: Vec<&str> = args.iter().copied().chain(["--json"]).collect();
    let (stdout, took) = run_to_end(cwd, &args, env);
    let v: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    (
        v[0]["manifest"]["digest"].as_str().unwrap().to_string(),
        took,
    )
}

#[test]
fn image_build_killed_at_random_points_leaves_nothing_running_and_never_poisons_the_cache() {
    common::sbin_path();
    common::require("debootstrap", "debootstrap");
    common::require("setpriv", "util-linux");
    let t = tempfile::tempdir().unwrap();
    let epoch = Path::new("1763942400");
    let path = common::path_with_sbin();
    let env: [(&str, &Path); 2] = [("SOURCE_DATE_EPOCH", epoch), ("PATH", Path::new(&path))];
    let build = |cache: &Path, out: &Path| -> Vec<String> {
        let mut a: Vec<String> = ["image", "build", "tx-debian", "--host-mirror", "--cache"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.push(cache.to_str().unwrap().into());
        a.push("-o".into());
        a.push(out.to_str().unwrap().into());
        a
    };
    let root = common::root();
    // The reference: a clean build in a cache of its own; its time bounds the kill delays.
    let clean = build(&t.path().join("cache-clean"), &t.path().join("out-clean"));
    let clean: Vec<&str> = clean.iter().map(String::as_str).collect();
    let (want, took) = built_digest(&root, &clean, &env);
    let cache = t.path().join("cache");
    let out = t.path().join("out");
    let a = build(&cache, &out);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let seed = seed();
    let mut rng = Lcg(seed);
    let mut kills = 0;
    for round in 0..4 {
        let delay = Duration::from_millis(500 + rng.below(took.as_millis() as u64));
        if run_killed(&root, &a, &env, delay) {
            kills += 1;
        }
        std::thread::sleep(Duration::from_secs(1));
        let left = common::processes_mentioning(cache.to_str().unwrap());
        assert!(
            left.is_empty(),
            "seed {seed}, round {round}: still running after the kill: {left:?}"
        );
        if out.join("index.json").exists() {
            layout_complete(&out)
                .unwrap_or_else(|e| panic!("seed {seed}, round {round}: partial layout: {e}"));
        }
    }
    let (got, _) = built_digest(&root, &a, &env);
    assert_eq!(
        got, want,
        "seed {seed}: the build after {kills} kills differs from a clean one"
    );
    layout_complete(&out).unwrap();
    eprintln!(
        "image build: {kills} kills (seed {seed}), then the digest of a clean build ({want})"
    );
}
