#!/usr/bin/env bash
# Benchmark (not a test): `picaboot image push` vs `skopeo copy oci:… docker://…` of the same OCI
# layout (one ~140 MB layer of incompressible data by default) into Debian's docker-registry
# on 127.0.0.1 with htpasswd auth. Each cold push goes to a fresh registry (empty storage, new
# port) so neither tool finds blobs already there; then each tool pushes again (warm).
# Needs: docker-registry apache2-utils skopeo umoci (scripts/apt-packages.d/http.txt).
# Usage: benches/push.sh [SIZE_MB]   (PICABOOT_BENCH_RUNS=N repeats each measurement)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${1:-140}
runs=${PICABOOT_BENCH_RUNS:-3}
for p in docker-registry htpasswd skopeo umoci; do
	command -v "$p" >/dev/null || { echo "benches/push.sh: $p missing (see scripts/apt-packages.d/http.txt)" >&2; exit 2; }
done
cargo build --release --quiet
bin=$PWD/target/release/picaboot
work=$(mktemp -d)
reg_pid=
cleanup() { [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

user=bench pass=bench-pw
htpasswd -Bbn "$user" "$pass" >"$work/htpasswd"

echo "making a layout with a ${size_mb} MB layer (umoci)…"
umoci init --layout "$work/layout"
umoci new --image "$work/layout:tx"
umoci unpack --rootless --image "$work/layout:tx" "$work/bundle" >/dev/null
head -c "$((size_mb * 1024 * 1024))" /dev/urandom >"$work/bundle/rootfs/payload"
umoci repack --image "$work/layout:tx" "$work/bundle"
du -sh "$work/layout/blobs"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_registry() {
	[ -n "$reg_pid" ] && { kill "$reg_pid"; wait "$reg_pid" 2>/dev/null || true; }
	rm -rf "$work/data"
	port=$(free_port)
	cat >"$work/config.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/data
http:
  addr: 127.0.0.1:$port
  secret: bench-only
auth:
  htpasswd:
    realm: bench
    path: $work/htpasswd
YML
	docker-registry serve "$work/config.yml" >"$work/registry.log" 2>&1 &
	reg_pid=$!
	for _ in $(seq 100); do
		curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && return 0
		sleep 0.1
	done
	echo "registry did not start" >&2; cat "$work/registry.log" >&2; exit 2
}
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'; }

export PICABOOT_REGISTRY_USERNAME=$user PICABOOT_REGISTRY_PASSWORD=$pass
for i in $(seq "$runs"); do
	start_registry
	p_cold=$(secs "$bin" image push tx --layout "$work/layout" --to "127.0.0.1:$port/bench/picaboot:v1" --plain-http)
	p_warm=$(secs "$bin" image push tx --layout "$work/layout" --to "127.0.0.1:$port/bench/picaboot:v1" --plain-http)
	start_registry
	s_cold=$(secs skopeo copy --dest-tls-verify=false --dest-creds "$user:$pass" "oci:$work/layout:tx" "docker://127.0.0.1:$port/bench/skopeo:v1")
	s_warm=$(secs skopeo copy --dest-tls-verify=false --dest-creds "$user:$pass" "oci:$work/layout:tx" "docker://127.0.0.1:$port/bench/skopeo:v1")
	printf 'run %d: picaboot cold %.2f s, warm %.2f s | skopeo cold %.2f s, warm %.2f s | cold ratio %.2fx\n' \
		"$i" "$p_cold" "$p_warm" "$s_cold" "$s_warm" "$(awk -v a="$p_cold" -v b="$s_cold" 'BEGIN { print a / b }')"
done
