#!/usr/bin/env bash
# Benchmark (not a test; prints figures): what address-space randomisation costs a guest under
# TCG. Boots the Debian installer's kernel and initrd (from `picaboot netboot alice`) with a
# small script as the initramfs's init, which times 300 forks, 300 execs of /bin/true
# (dynamically linked busybox) and 100k shell arithmetic steps, once with ASLR and once with
# `norandmaps` (which picaboot adds to every direct-booted TCG guest, src/qemu/vm.rs).
# Usage: benches/tcg-exec.sh   (needs qemu-system-x86, cpio, gzip; about a minute)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
for t in qemu-system-x86_64 cpio gzip; do
	command -v "$t" >/dev/null || { echo "benches/tcg-exec.sh: $t is missing (Debian: qemu-system-x86, cpio, gzip)" >&2; exit 2; }
done
cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
target/release/picaboot netboot alice --mirror apt --frontend text -q -o "$work/out"
nb=$work/out/alice/netboot
mkdir "$work/root"
cat > "$work/root/bench.sh" <<'SCRIPT'
#!/bin/sh
mount -t proc proc /proc
t() { cut -d' ' -f1 /proc/uptime; }
a=$(t); i=0; while [ $i -lt 300 ]; do ( : ); i=$((i+1)); done; b=$(t)
i=0; while [ $i -lt 300 ]; do /bin/true; i=$((i+1)); done; c=$(t)
i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; d=$(t)
echo "BENCH fork300=$(awk "BEGIN{print $b-$a}") exec300=$(awk "BEGIN{print $c-$b}") arith100k=$(awk "BEGIN{print $d-$c}")"
echo o > /proc/sysrq-trigger
SCRIPT
chmod 0755 "$work/root/bench.sh"
(cd "$work/root" && echo bench.sh | cpio -o -H newc --quiet | gzip) > "$work/add.gz"
cat "$nb/initrd.gz" "$work/add.gz" > "$work/initrd.gz"
for params in "" norandmaps; do
	qemu-system-x86_64 -accel tcg,thread=single -machine q35 -cpu max -smp 1 -m 3072 \
		-nodefaults -display none -no-reboot -kernel "$nb/linux" -initrd "$work/initrd.gz" \
		-append "console=ttyS0 rdinit=/bench.sh panic=-1 loglevel=3 $params" \
		-serial "file:$work/console.log"
	echo "${params:-(ASLR on)}: $(grep -a -o 'BENCH.*' "$work/console.log" | tr -d '\r' | cut -d' ' -f2-) (seconds)"
done
