#!/usr/bin/env bash
# The install proof's speed: one whole `picaboot test install HOST` (install, first boot, both
# degraded boots) with the phase timings it records, read from its report. Run as root on an
# otherwise idle machine; a benchmark, not a test (a slow run does not fail).
#   usage: benches/install.sh [HOST] [extra test-install args...]
set -euo pipefail
cd "$(dirname "$0")/.."
host=${1:-alice}
shift || true
export PATH="$PATH:/usr/sbin:/sbin"
cargo build --release --quiet
out=$(mktemp -d)
flag=--allow-unverified-udebs   # only used when the mirror's udeb index does not verify
start=$(date +%s)
target/release/picaboot test install "$host" $flag -o "$out" "$@" || true
end=$(date +%s)
python3 - "$out/$host/report.json" "$((end - start))" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"accelerator: {r['accel']}")
print(f"udebs: {r['udeb_source']['kind']}")
for s in r["steps"]:
    if s["seconds"] > 0:
        m, sec = divmod(int(s["seconds"]), 60)
        print(f"  {s['name']:<40} {m:3d} min {sec:02d} s  {'ok' if s['passed'] else 'FAIL'}")
total = int(sys.argv[2])
print(f"  {'whole scenario (wall clock)':<40} {total // 60:3d} min {total % 60:02d} s")
print(f"  failed steps: {sum(1 for s in r['steps'] if not s['passed'])}")
PY
rm -rf "$out"
