#!/usr/bin/env bash
# Benchmark of `picaboot netboot` (not a test; prints figures):
#   1. warm cache: `picaboot netboot alice` vs `cp` of linux + initrd.gz;
#   2. cold cache: download + verify + extract of the installer package
#      (`--no-supplement`) vs `curl` + `dpkg-deb -x` of the same .deb;
#   3. cold cache, full build (installer + kernel modules + udeb replacements + depmod).
# The mirror is this machine's apt mirror, read at run time (override: MIRROR=URL).
# Usage: benches/netboot.sh [RUNS]   (default 5 warm runs; cold runs once each)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
export PATH="$PATH:/usr/sbin:/sbin"
for t in curl dpkg-deb gpgv depmod; do
	command -v "$t" >/dev/null || { echo "benches/netboot.sh: $t is missing (see scripts/apt-packages.d/netboot.txt)" >&2; exit 2; }
done
if [ -z "${MIRROR:-}" ]; then
	MIRROR=$(awk '/^Types:/{deb=($0 ~ /deb( |$)/)} /^Suites:/{sec=($0 ~ /security/)} /^URIs:/{u=$2} /^$/{if(deb&&!sec&&u&&!m)m=u; u=""} END{if(deb&&!sec&&u&&!m)m=u; print m}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
fi
[ -n "$MIRROR" ] || { echo "benches/netboot.sh: no mirror (set MIRROR=URL)" >&2; exit 2; }

cargo build --release --quiet
bin=$PWD/target/release/picaboot
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f\n", b-a}'; }
median() { sort -n | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }

warm_cache=${PICABOOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/picaboot}
echo "mirror: (this machine's apt mirror)   warm cache: $warm_cache   runs: $runs"
"$bin" netboot alice --mirror "$MIRROR" --cache "$warm_cache" -o "$work/warmup" >/dev/null

: >"$work/pb"; : >"$work/cp"
for i in $(seq "$runs"); do
	a=$(now); "$bin" netboot alice --mirror "$MIRROR" --cache "$warm_cache" -o "$work/out$i" >/dev/null; b=$(now)
	secs "$a" "$b" >>"$work/pb"
	mkdir -p "$work/cp$i"
	a=$(now); cp "$work/warmup/alice/netboot/linux" "$work/warmup/alice/netboot/initrd.gz" "$work/cp$i/"; b=$(now)
	secs "$a" "$b" >>"$work/cp"
	rm -rf "$work/out$i" "$work/cp$i"
done
pb=$(median <"$work/pb"); cpt=$(median <"$work/cp")
size=$(du -bc "$work/warmup/alice/netboot/linux" "$work/warmup/alice/netboot/initrd.gz" | tail -1 | cut -f1)
echo "warm: picaboot netboot alice (gtk)  median ${pb} s   cp linux+initrd.gz ($((size >> 20)) MB) median ${cpt} s   ratio $(awk -v a="$pb" -v b="$cpt" 'BEGIN{printf "%.2f", a/b}')x"

# Cold: the same .deb through curl + dpkg-deb -x (lookup untimed).
curl -fsS "$MIRROR/dists/trixie/main/binary-amd64/Packages.xz" | xz -dc >"$work/Packages"
deb=$(awk '$1=="Package:"{x=($2=="debian-installer-13-netboot-amd64")} x&&$1=="Filename:"{print $2; exit}' "$work/Packages")
a=$(now)
curl -fsS -o "$work/di.deb" "$MIRROR/$deb"
dpkg-deb -x "$work/di.deb" "$work/x"
b=$(now); base=$(secs "$a" "$b")
a=$(now); "$bin" netboot alice --mirror "$MIRROR" --cache "$work/cold1" --no-supplement -o "$work/cold1-out" >/dev/null; b=$(now)
cold=$(secs "$a" "$b")
echo "cold: picaboot netboot --no-supplement ${cold} s   curl + dpkg-deb -x ${base} s   ratio $(awk -v a="$cold" -v b="$base" 'BEGIN{printf "%.2f", a/b}')x"
a=$(now); "$bin" netboot alice --mirror "$MIRROR" --cache "$work/cold2" -o "$work/cold2-out" >/dev/null; b=$(now)
echo "cold: picaboot netboot (full: installer + linux-image + udeb replacements + depmod) $(secs "$a" "$b") s"
