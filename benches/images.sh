#!/usr/bin/env bash
# Image benchmarks (not tests; run as root, after `cargo build --release`):
#  1. layer packing of the tx-debian root filesystem: picaboot vs `umoci repack` vs
#     `tar --sort=name | pigz -n | sha256sum` (and `gzip -n`);
#  2. cold and warm `picaboot image build` of every image buildable from the Debian archive.
# Uses this machine's apt mirror (--host-mirror). Prints one line per figure.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin" SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1763942400}"
bin=target/release/picaboot
[ -x "$bin" ] || cargo build --release --quiet
work=$(mktemp -d /var/tmp/picaboot-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
secs() { local s=$(date +%s.%N); "$@" >/dev/null; echo "$(date +%s.%N) - $s" | bc; }

# 1. the tx-debian root filesystem, as an image user sees it
"$bin" image build tx-debian --host-mirror -o "$work/out" >/dev/null 2>&1
umoci unpack --image "$work/out:tx-debian" "$work/bundle" >/dev/null
root="$work/bundle/rootfs"
echo "tree: $(du -sm "$root" | cut -f1) MB, $(find "$root" -xdev | wc -l) entries"
sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
cat "$root"/usr/lib/x86_64-linux-gnu/* >/dev/null 2>&1 || true   # same warm page cache for all
for i in 1 2 3; do echo "picaboot pack (gzip level 1, zlib-rs, diff_id+digest): $(secs "$bin" image pack "$root" -o "$work/p.tar.gz") s"; done
ls -l "$work/p.tar.gz" | awk '{print "picaboot blob: " $5 " bytes"}'

umoci init --layout "$work/u" >/dev/null
umoci new --image "$work/u:b" >/dev/null
umoci unpack --image "$work/u:b" "$work/ub" >/dev/null
cp -a "$root/." "$work/ub/rootfs/"
for i in 1; do echo "umoci repack: $(secs umoci repack --image "$work/u:b" "$work/ub") s"; done

if command -v pigz >/dev/null; then
	for i in 1 2; do echo "tar --sort=name | pigz -n | sha256sum: $(secs sh -c "tar -C '$root' --sort=name -cf - . | pigz -n | sha256sum") s"; done
else
	echo "tar | pigz: pigz not installed (Debian package pigz)"
fi
echo "tar --sort=name | gzip -n | sha256sum: $(secs sh -c "tar -C '$root' --sort=name -cf - . | gzip -n | sha256sum") s"

# 2. cold and warm build of the family (every image whose sources are reachable here)
family="tx-apache tx-nginx tx-dokuwiki mysql-backup postgres-backup"
cold=$(date +%s.%N)
for i in $family; do "$bin" image build "$i" --host-mirror --cache "$work/cache" -o "$work/fam" >/dev/null 2>&1; done
echo "cold build of tx-debian $family: $(echo "$(date +%s.%N) - $cold" | bc) s"
warm=$(date +%s.%N)
for i in $family; do "$bin" image build "$i" --host-mirror --cache "$work/cache" -o "$work/fam" >/dev/null 2>&1; done
echo "warm build (unchanged) of the same: $(echo "$(date +%s.%N) - $warm" | bc) s"
