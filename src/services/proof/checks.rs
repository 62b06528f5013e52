//! The named checks of `picaboot test services`, each asked of the guests over ssh (or of
//! the published port from the host) after `services form` ran, and each reporting what it saw.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::guests::Guests;
use super::stack::{WEB_DIR, WEB_PORT};
use crate::profile::services::Services;
use crate::qemu::CheckResult;

fn check(name: &str, passed: bool, detail: String) -> CheckResult {
    CheckResult {
        name: name.into(),
        passed,
        detail,
    }
}

/// A token no earlier run wrote (the clock's nanoseconds and the process id).
pub fn token(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("picaboot-{what}-{}-{nanos}", std::process::id())
}

/// Check 1: A file written on each member's mount is read on every other member's.
pub fn replicated(g: &Guests, s: &Services) -> CheckResult {
    let mount = &s.volume.mount;
    let mut seen = Vec::new();
    for (i, w) in g.list.iter().enumerate() {
        let t = token(&w.name);
        let file = format!("{mount}/proof/from-{}", w.name);
        if let Err(e) = g.sh(i, &format!("mkdir -p {mount}/proof && echo {t} > {file}")) {
            return check(
                "gluster-replicated",
                false,
                format!("write on {}: {e}", w.name),
            );
        }
        for (j, r) in g.list.iter().enumerate().filter(|(j, _)| *j != i) {
            let (ok, got) = g.until(j, &format!("grep -qx {t} {file}"), Duration::from_secs(60));
            if !ok {
                return check(
                    "gluster-replicated",
                    false,
                    format!("{file} written on {} not read on {}: {got}", w.name, r.name),
                );
            }
            seen.push(format!("{} -> {}", w.name, r.name));
        }
    }
    let info = g
        .sh(
            0,
            &format!(
                "gluster volume info {} | grep -E '^(Type|Number of Bricks):' | tr '\\n' ' '",
                s.volume.name
            ),
        )
        .unwrap_or_default();
    check(
        "gluster-replicated",
        true,
        format!(
            "{}: {}; files read across: {}",
            s.volume.name,
            info.trim(),
            seen.join(", ")
        ),
    )
}

/// Check 3: The swarm's nodes have the roles the profile asks, and its overlay is encrypted.
pub fn swarm_roles(g: &Guests, s: &Services) -> CheckResult {
    let nodes = match g.sh(
        0,
        "docker node ls --format '{{.Hostname}} {{.Status}} {{.ManagerStatus}}'",
    ) {
        Ok(t) => t,
        Err(e) => return check("swarm-roles", false, format!("docker node ls: {e}")),
    };
    let mut wrong = Vec::new();
    for m in &s.swarm.members {
        let line = nodes
            .lines()
            .find(|l| l.split_whitespace().next() == Some(m.vm.as_str()));
        let manager = line.is_some_and(|l| l.split_whitespace().count() >= 3);
        match line {
            None => wrong.push(format!("{} is not in the swarm", m.vm)),
            Some(_) if manager != m.manager => wrong.push(format!(
                "{} is a {} (the profile asks a {})",
                m.vm,
                if manager { "manager" } else { "worker" },
                if m.manager { "manager" } else { "worker" }
            )),
            Some(_) => {}
        }
    }
    let net = &s.swarm.network;
    let opts = g
        .sh(0, &format!("docker network inspect {net} --format '{{{{.Driver}}}} {{{{.Scope}}}} {{{{json .Options}}}}'"))
        .unwrap_or_else(|e| format!("no network: {e}"));
    if !(opts.starts_with("overlay swarm ") && opts.contains("\"encrypted\"")) {
        wrong.push(format!("{net}: {}", opts.trim()));
    }
    let nodes = nodes.lines().collect::<Vec<_>>().join("; ");
    check(
        "swarm-roles",
        wrong.is_empty(),
        if wrong.is_empty() {
            format!("nodes: {nodes}; {net}: {}", opts.trim())
        } else {
            format!("{}; nodes: {nodes}", wrong.join("; "))
        },
    )
}

/// GET `http://127.0.0.1:port/` (bounded): the body, or why not.
fn get(port: u16) -> Result<String, String> {
    // Loopback only: no proxy from the environment, one try (the caller polls).
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| crate::http::describe(&e))?;
    let url = format!("http://127.0.0.1:{port}/");
    let r = client
        .get(&url)
        .send()
        .map_err(|e| crate::http::describe(&e))?;
    let status = r.status();
    let body = crate::limits::read_bounded(r, crate::limits::ERROR_BODY, &url)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&body).into_owned();
    if status.is_success() {
        Ok(text)
    } else {
        Err(format!("HTTP {}", status.as_u16()))
    }
}

/// Polls every guest's published port until each answers with `want`, within `limit`:
/// `(all answered, what each said)`.
pub fn answers(g: &Guests, which: &[usize], want: &str, limit: Duration) -> (bool, Vec<String>) {
    let start = Instant::now();
    loop {
        let said: Vec<(bool, String)> = which
            .iter()
            .map(|&i| {
                let name = &g.list[i].name;
                match get(g.list[i].web_port) {
                    Ok(b) if b.contains(want) => (true, format!("{name}: answered")),
                    Ok(b) => (
                        false,
                        format!("{name}: said {:?}", b.chars().take(80).collect::<String>()),
                    ),
                    Err(e) => (false, format!("{name}: {e}")),
                }
            })
            .collect();
        if said.iter().all(|(ok, _)| *ok) || start.elapsed() >= limit {
            return (
                said.iter().all(|(ok, _)| *ok),
                said.into_iter().map(|(_, s)| s).collect(),
            );
        }
        std::thread::sleep(Duration::from_secs(3));
    }
}

/// The node running `service`'s task now (empty: none running).
pub fn task_node(g: &Guests, i: usize, service: &str) -> String {
    g.sh(
        i,
        &format!("docker service ps {service} --filter desired-state=running --format '{{{{.Node}}}} {{{{.CurrentState}}}}' | awk '$2 == \"Running\" {{ print $1; exit }}'"),
    )
    .unwrap_or_default()
    .trim()
    .to_string()
}

/// Check 4: The web service runs the image pulled from the registry (pinned to the digest pushed),
/// serves a file from its /DATA bind mount, and its published port answers on every node.
pub fn stack_served(g: &Guests, s: &Services, service: &str, digest: Option<&str>) -> CheckResult {
    let name = "stack-routing-mesh";
    let (running, _) = g.until(
        0,
        &format!("docker service ps {service} --filter desired-state=running --format '{{{{.CurrentState}}}}' | grep -q '^Running'"),
        Duration::from_secs(420),
    );
    let image = g
        .sh(0, &format!("docker service inspect {service} --format '{{{{.Spec.TaskTemplate.ContainerSpec.Image}}}}'"))
        .unwrap_or_default();
    let image = image.trim();
    if !running {
        let ps = g
            .sh(0, &format!("docker service ps --no-trunc {service} --format '{{{{.Node}}}} {{{{.CurrentState}}}} {{{{.Error}}}}' | head -3"))
            .unwrap_or_default();
        return check(
            name,
            false,
            format!("{service} ({image}) never ran: {}", ps.trim()),
        );
    }
    let pinned = digest.is_none_or(|d| image.ends_with(&format!("@{d}")));
    let t = token("web");
    let file = format!("{}/{WEB_DIR}/index.html", s.volume.mount);
    if let Err(e) = g.sh(
        0,
        &format!("mkdir -p {}/{WEB_DIR} && echo {t} > {file}", s.volume.mount),
    ) {
        return check(name, false, format!("write {file}: {e}"));
    }
    let all: Vec<usize> = (0..g.list.len()).collect();
    let (ok, said) = answers(g, &all, &t, Duration::from_secs(120));
    let node = task_node(g, 0, service);
    check(
        name,
        ok && pinned,
        format!(
            "{service} runs {image}{} on {node}; {file} (written on {}) served on port {WEB_PORT} of every node: {}",
            if pinned { "" } else { " (NOT the digest pushed)" },
            g.list[0].name,
            said.join(", ")
        ),
    )
}

/// Check 6: From an address of the public network that is not a peer, the swarm's and GlusterFS's
/// ports do not answer, while ssh does (the path works) and the peer's own address gets in.
pub fn firewall(g: &Guests, from: usize, to: usize, stranger: Ipv4Addr) -> CheckResult {
    let name = "firewall-peers-only";
    let (src, dst) = (&g.list[from], &g.list[to]);
    let dev = format!(
        "$(ip -o -4 addr show | awk '$4 == \"{}/32\" {{ print $2; exit }}')",
        src.address
    );
    if let Err(e) = g.sh(from, &format!("ip addr replace {stranger}/32 dev {dev}")) {
        return check(name, false, format!("add {stranger} on {}: {e}", src.name));
    }
    let connects = |source: Ipv4Addr, port: u16| -> bool {
        let cmd = format!(
            "curl -s -o /dev/null -m 5 --connect-timeout 4 -w '%{{time_connect}}' --interface {source} telnet://{}:{port} </dev/null; true",
            dst.address
        );
        g.sh(from, &cmd)
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .is_some_and(|t| t > 0.0)
    };
    let mut wrong = Vec::new();
    if !connects(stranger, 22) {
        wrong.push(format!(
            "{stranger} cannot reach {}:22 at all (the check proves nothing)",
            dst.address
        ));
    }
    if !connects(src.address, 2377) && !connects(src.address, 24007) {
        wrong.push(format!("the peer {} is refused too", src.address));
    }
    let ports = [2377u16, 7946, 24007];
    for p in ports {
        if connects(stranger, p) {
            wrong.push(format!("{stranger} connected to {}:{p}", dst.address));
        }
    }
    let _ = g.sh(from, &format!("ip addr del {stranger}/32 dev {dev}"));
    check(
        name,
        wrong.is_empty(),
        if wrong.is_empty() {
            format!(
                "from {stranger} (on {}'s link): {}:22 answers, {ports:?} do not; from the peer {} they do",
                src.name, dst.address, src.address
            )
        } else {
            wrong.join("; ")
        },
    )
}

/// Check 2: After guest `i` reboots, the volume is mounted before Docker starts, with no rc.local.
pub fn mount_before_docker(g: &Guests, i: usize, s: &Services) -> CheckResult {
    let name = "mount-before-docker";
    let who = &g.list[i].name;
    let boot_id = "cat /proc/sys/kernel/random/boot_id";
    let before = g.sh(i, boot_id).unwrap_or_default();
    let start = Instant::now();
    let _ = g.sh_in(
        i,
        "systemctl reboot",
        crate::exec::Input::Nothing,
        Duration::from_secs(20),
    );
    g.disconnect(i);
    let mut back = false;
    while start.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_secs(3));
        if let Ok(id) = g.sh(i, boot_id) {
            if id != before && !id.trim().is_empty() {
                back = true;
                break;
            }
        }
    }
    if !back {
        return check(
            name,
            false,
            format!("{who} did not come back within 300 s of its reboot"),
        );
    }
    let rebooted = start.elapsed().as_secs_f64();
    let mount = &s.volume.mount;
    let unit = mount.trim_start_matches('/').replace('/', "-") + ".mount";
    let (up, _) = g.until(i, "systemctl is-active docker", Duration::from_secs(180));
    let probe = format!(
        "findmnt -n -o FSTYPE {mount}; \
         systemctl show -P ActiveEnterTimestampMonotonic {unit}; \
         systemctl show -P ExecMainStartTimestampMonotonic docker.service; \
         if [ -e /etc/rc.local ] && grep -q mount /etc/rc.local; then echo rc.local; else echo no-rc.local; fi"
    );
    let out = g.sh(i, &probe).unwrap_or_else(|e| e);
    let f: Vec<&str> = out.lines().map(str::trim).collect();
    let num = |k: usize| f.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let (fs, mounted_at, docker_at) = (f.first().copied().unwrap_or(""), num(1), num(2));
    let passed = up
        && fs == "fuse.glusterfs"
        && mounted_at > 0
        && docker_at > mounted_at
        && f.get(3) == Some(&"no-rc.local");
    check(
        name,
        passed,
        format!(
            "{who} back in {rebooted:.0} s: {mount} is {fs:?} ({unit} active at {:.1} s), docker {} at {:.1} s, {}",
            mounted_at as f64 / 1e6,
            if up { "started" } else { "NOT active" },
            docker_at as f64 / 1e6,
            f.get(3).copied().unwrap_or("?")
        ),
    )
}

/// Check 5: Guest `victim`'s power is cut: the volume is still read on the others, the service
/// still answers there, and what the swarm did about the victim's tasks is said (and
/// checked against the roles: a worker's task is rescheduled while a manager quorum lives).
pub fn survives_kill(g: &mut Guests, victim: usize, s: &Services, service: &str) -> CheckResult {
    let name = "survives-kill";
    let dead = g.list[victim].name.clone();
    let Some(live) = (0..g.list.len()).find(|&i| i != victim) else {
        return check(name, false, "no guest left to ask".into());
    };
    let alive = g.list[live].name.clone();
    let before = task_node(g, live, service);
    g.kill(victim);
    let start = Instant::now();
    let mount = &s.volume.mount;
    let read = g.sh_in(
        live,
        &format!("cat {mount}/proof/from-{dead}"),
        crate::exec::Input::Nothing,
        Duration::from_secs(180),
    );
    let read_s = start.elapsed().as_secs_f64();
    let (down, _) = g.until(
        live,
        &format!(
            "docker node ls --format '{{{{.Hostname}}}} {{{{.Status}}}}' | grep -qx '{dead} Down'"
        ),
        Duration::from_secs(120),
    );
    let down_s = start.elapsed().as_secs_f64();
    let managers_left = s
        .swarm
        .members
        .iter()
        .filter(|m| m.manager && m.vm != dead)
        .count();
    let quorum = managers_left * 2 > s.swarm.managers();
    let (moved, after) = if before == dead && quorum {
        let (ok, _) = g.until(
            live,
            &format!("docker service ps {service} --filter desired-state=running --format '{{{{.Node}}}} {{{{.CurrentState}}}}' | grep -q '^{alive} Running'"),
            Duration::from_secs(180),
        );
        (ok, task_node(g, live, service))
    } else {
        (true, task_node(g, live, service))
    };
    let t = g
        .sh(live, &format!("cat {mount}/{WEB_DIR}/index.html"))
        .unwrap_or_default();
    let (serves, said) = answers(g, &[live], t.trim(), Duration::from_secs(180));
    let swarm = match (before == dead, quorum) {
        (false, _) => format!("the task ran on {alive}: nothing to reschedule, it kept running"),
        (true, true) => format!(
            "the task ran on {dead}; {alive} holds the managers' quorum ({managers_left} of {}), so the swarm {} it on {after:?} ({:.0} s after the cut)",
            s.swarm.managers(),
            if moved { "rescheduled" } else { "did NOT reschedule" },
            start.elapsed().as_secs_f64()
        ),
        (true, false) => format!(
            "the task ran on {dead}; with {managers_left} of {} managers left there is no quorum: the swarm cannot reschedule it (the profile's trade-off)",
            s.swarm.managers()
        ),
    };
    let passed = read.is_ok() && down && moved && (serves || (before == dead && !quorum));
    check(
        name,
        passed,
        format!(
            "{dead} killed: {mount}/proof/from-{dead} {} on {alive} after {read_s:.0} s (GlusterFS waits network.ping-timeout for a dead peer); \
             the swarm saw {dead} {} after {down_s:.0} s; {swarm}; port {WEB_PORT} on {alive}: {}",
            if read.is_ok() { "read" } else { "NOT read" },
            if down { "Down" } else { "still up" },
            said.join(", ")
        ),
    )
}

/// The dumps in `dir` on guest `i`, sorted (their names sort by time).
fn dumps(g: &Guests, i: usize, dir: &str) -> Result<Vec<String>, String> {
    let out = g.sh(
        i,
        &format!("find {dir} -maxdepth 1 -name '*.sql.gz' -printf '%f\\n' | sort"),
    )?;
    Ok(out.lines().map(str::to_string).collect())
}

/// Check 7: the backup service dumps into its /DATA directory and keeps the declared count:
/// `keep` older dumps are added, one dump is asked of the running task, and exactly the
/// `keep` newest remain, the newest a whole MariaDB dump.
pub fn backup_kept(g: &Guests, s: &Services, name: &str, service: &str) -> CheckResult {
    let check_name = "db-backup-kept";
    let Some(svc) = s.services.iter().find(|x| x.name == name) else {
        return check(check_name, false, format!("no service {name} in the stack"));
    };
    let (Some(b), Some(m)) = (&svc.backup, svc.mounts.first()) else {
        return check(
            check_name,
            false,
            format!("{name} has no backup or no mount"),
        );
    };
    let (keep, dir) = (b.keep as usize, &m.source);
    let (first, _) = g.until(
        0,
        &format!("ls {dir}/*.sql.gz >/dev/null 2>&1"),
        Duration::from_secs(420),
    );
    if !first {
        let ps = g
            .sh(0, &format!("docker service ps --no-trunc {service} --format '{{{{.Node}}}} {{{{.CurrentState}}}} {{{{.Error}}}}' | head -3"))
            .unwrap_or_default();
        return check(
            check_name,
            false,
            format!("no dump in {dir} from {service}'s start: {}", ps.trim()),
        );
    }
    let seed = format!(
        "for d in $(seq 1 {keep}); do n=$(date -u -d \"$d days ago\" +%Y%m%dT%H%M%S.%NZ); echo seed | gzip > {dir}/$n.sql.gz; done"
    );
    let before = match g.sh(0, &seed).and_then(|_| dumps(g, 0, dir)) {
        Ok(b) => b,
        Err(e) => return check(check_name, false, format!("seeding {dir}: {e}")),
    };
    let node = task_node(g, 0, service);
    let Some(i) = g.index(&node) else {
        return check(
            check_name,
            false,
            format!("{service} runs on no guest ({node:?})"),
        );
    };
    let run = format!(
        "docker exec $(docker ps -q -f label=com.docker.swarm.service.name={service} | head -1) db-backup backup"
    );
    if let Err(e) = g.sh_in(
        i,
        &run,
        crate::exec::Input::Nothing,
        Duration::from_secs(300),
    ) {
        return check(
            check_name,
            false,
            format!("db-backup backup on {node}: {e}"),
        );
    }
    let after = dumps(g, 0, dir).unwrap_or_default();
    let new: Vec<&String> = after.iter().filter(|a| !before.contains(a)).collect();
    let mut all: Vec<String> = before.iter().chain(new.iter().copied()).cloned().collect();
    all.sort();
    let expected = &all[all.len().saturating_sub(keep)..];
    let newest = after.last().cloned().unwrap_or_default();
    let whole = g
        .sh(0, &format!("gzip -t {dir}/{newest} && zcat {dir}/{newest} | head -3 && zcat {dir}/{newest} | tail -1"))
        .unwrap_or_default();
    let passed = new.len() == 1
        && after == expected
        && after.len() == keep
        && new[0] == &newest
        && whole.contains("MariaDB dump")
        && whole.contains("Dump completed");
    check(
        check_name,
        passed,
        format!(
            "{} dumps in {dir} before (with {keep} older ones added), one asked of {service} on {node}: {} after (keep = {keep}), the newest {newest} {}",
            before.len(),
            after.len(),
            if whole.contains("Dump completed") { "a whole MariaDB dump" } else { "NOT a whole dump" }
        ),
    )
}
