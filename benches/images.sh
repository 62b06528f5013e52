#!/usr/bin/env bash
# Image benchmarks (not tests; run as root, after `cargo build --release`):
#  1. layer packing of the tx-debian root filesystem: picaboot vs `umoci repack` vs
#     `tar --sort=name | pigz -n | sha256sum` (and `gzip -n`);
#  2. cold and warm `picaboot image build` of every image buildable from the Debian archive.
# Uses this machine's apt mirror (--host-mirror) and jq, bc, pigz, umoci. Prints one line per figure.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin" SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1763942400}"
bin=target/release/picaboot
[ -x "$bin" ] || cargo build --release --quiet
work=$(mktemp -d /var/tmp/picaboot-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
secs() { local s=$(date +%s.%N); "$@" >/dev/null; echo "$(date +%s.%N) - $s" | bc; }

# 1. two trees: the debootstrap base (tx-debian's first layer) and the whole tx-debian rootfs
"$bin" image build tx-debian --host-mirror -o "$work/out" >/dev/null 2>&1
umoci unpack --image "$work/out:tx-debian" "$work/bundle" >/dev/null
base_blob=$(jq -r '.manifests[0].digest' "$work/out/index.json" | cut -d: -f2)
base_layer=$(jq -r '.layers[0].digest' "$work/out/blobs/sha256/$base_blob" | cut -d: -f2)
mkdir -p "$work/base"
tar -C "$work/base" -xzf "$work/out/blobs/sha256/$base_layer"
for root in "$work/base" "$work/bundle/rootfs"; do
	echo "== tree $(basename "$root"): $(du -sm "$root" | cut -f1) MB, $(find "$root" -xdev | wc -l) entries"
	tar -C "$root" -cf - . >/dev/null # warm the page cache the same way for every packer
	for i in 1 2 3; do echo "picaboot image pack (zlib-rs gzip -1, diff_id + digest in one pass): $(secs "$bin" image pack "$root" -o "$work/p.tar.gz") s"; done
	echo "picaboot blob: $(stat -c %s "$work/p.tar.gz") bytes"
	rm -rf "$work/u" "$work/ub"
	umoci init --layout "$work/u" >/dev/null
	umoci new --image "$work/u:b" >/dev/null
	umoci unpack --image "$work/u:b" "$work/ub" >/dev/null
	cp -a "$root/." "$work/ub/rootfs/"
	echo "umoci repack: $(secs umoci repack --image "$work/u:b" "$work/ub") s"
	if command -v pigz >/dev/null; then
		for i in 1 2; do echo "tar --sort=name | pigz -n | sha256sum: $(secs sh -c "tar -C '$root' --sort=name -cf - . | pigz -n | sha256sum") s"; done
	else
		echo "tar | pigz: pigz not installed (Debian package pigz)"
	fi
	echo "tar --sort=name | gzip -n | sha256sum: $(secs sh -c "tar -C '$root' --sort=name -cf - . | gzip -n | sha256sum") s"
done

[ -n "${BENCH_SKIP_FAMILY:-}" ] && exit 0
# 2. cold and warm build of the family (every image whose sources are reachable here)
family="tx-apache tx-nginx tx-dokuwiki mysql-backup postgres-backup"
cold=$(date +%s.%N)
for i in $family; do "$bin" image build "$i" --host-mirror --cache "$work/cache" -o "$work/fam" >/dev/null 2>&1; done
echo "cold build of tx-debian $family: $(echo "$(date +%s.%N) - $cold" | bc) s"
warm=$(date +%s.%N)
for i in $family; do "$bin" image build "$i" --host-mirror --cache "$work/cache" -o "$work/fam" >/dev/null 2>&1; done
echo "warm build (unchanged) of the same: $(echo "$(date +%s.%N) - $warm" | bc) s"
