#!/usr/bin/env bash
# Benchmark (not a test): whole-process time of `picaboot render --all` on the shipped
# profiles, release build, N runs; prints min / median / max in milliseconds.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
cargo build --release --quiet
bin=target/release/picaboot
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r profiles "$work/profiles"
times=()
for _ in $(seq "$runs"); do
	start=$(date +%s%N)
	"$bin" render --all --profiles "$work/profiles" -o "$work/out" >/dev/null
	end=$(date +%s%N)
	times+=($(( (end - start) / 1000 )))
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
min=$(echo "$sorted" | head -1)
max=$(echo "$sorted" | tail -1)
median=$(echo "$sorted" | sed -n "$(( (runs + 1) / 2 ))p")
printf 'render --all (2 hosts, %d runs): min %d.%03d ms, median %d.%03d ms, max %d.%03d ms\n' \
	"$runs" $((min / 1000)) $((min % 1000)) $((median / 1000)) $((median % 1000)) $((max / 1000)) $((max % 1000))
