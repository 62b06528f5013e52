#!/bin/sh
# post-install check of alice, rendered by picaboot from hosts/alice.toml: the install
# proof's checks, run on the live host over ssh (`picaboot reinstall`, or by hand:
# `ssh root@HOST sh -s < post-install-check.sh`). Prints one `PICABOOT-CHECK NAME PASS|FAIL
# DETAIL` line per check and `PICABOOT-DONE rc=N` on stdout; exits with N, the failed checks.
# Changes nothing on the host.
set -u
console=/dev/stdout
failed=0

check() { # check NAME PASS|FAIL DETAIL
	[ "$2" = PASS ] || failed=$((failed + 1))
	printf 'PICABOOT-CHECK %s %s %s\n' "$1" "$2" "$(printf '%s' "$3" | tr '\n\r\t' '   ')" > "$console"
}
verdict() { # verdict NAME DETAIL COMMAND...: PASS when COMMAND succeeds
	name=$1
	detail=$2
	shift 2
	if "$@" >/dev/null 2>&1; then check "$name" PASS "$detail"; else check "$name" FAIL "$detail"; fi
}
mode=whole
missing=
case "$mode" in
degraded:*) missing=${mode#degraded:} ;;
esac
echo "PICABOOT-SELFTEST mode=$mode" > "$console"

# --- md arrays: active, members in sync (after any resync), degraded only where a disk is gone
if [ -z "$missing" ]; then
	for md in /dev/md0 /dev/md1 /dev/md2; do
		mdadm --wait "$md" >/dev/null 2>&1 || true
	done
fi
line=$(grep -A1 '^md0 :' /proc/mdstat | tr '\n' ' ')
state=$(mdadm --detail /dev/md0 2>/dev/null | sed -n 's/^ *State : //p')
expected_up=2
[ "$missing" != ssd0 ] || expected_up=$((expected_up - 1))
[ "$missing" != ssd1 ] || expected_up=$((expected_up - 1))
up=$(echo "$line" | sed -n 's/.*\[\([U_]*\)\].*/\1/p' | tr -cd 'U' | wc -c)
if echo "$line" | grep -q 'active' && [ "$up" -eq "$expected_up" ] && ! echo "$state" | grep -qi 'fail\|inactive'; then
	check md-md0 PASS "$up/2 up (want $expected_up): $state"
else
	check md-md0 FAIL "$up/2 up (want $expected_up): ${line:-not in /proc/mdstat} state=${state:-?}"
fi
line=$(grep -A1 '^md1 :' /proc/mdstat | tr '\n' ' ')
state=$(mdadm --detail /dev/md1 2>/dev/null | sed -n 's/^ *State : //p')
expected_up=2
[ "$missing" != ssd0 ] || expected_up=$((expected_up - 1))
[ "$missing" != ssd1 ] || expected_up=$((expected_up - 1))
up=$(echo "$line" | sed -n 's/.*\[\([U_]*\)\].*/\1/p' | tr -cd 'U' | wc -c)
if echo "$line" | grep -q 'active' && [ "$up" -eq "$expected_up" ] && ! echo "$state" | grep -qi 'fail\|inactive'; then
	check md-md1 PASS "$up/2 up (want $expected_up): $state"
else
	check md-md1 FAIL "$up/2 up (want $expected_up): ${line:-not in /proc/mdstat} state=${state:-?}"
fi
line=$(grep -A1 '^md2 :' /proc/mdstat | tr '\n' ' ')
state=$(mdadm --detail /dev/md2 2>/dev/null | sed -n 's/^ *State : //p')
expected_up=2
[ "$missing" != hdd0 ] || expected_up=$((expected_up - 1))
[ "$missing" != hdd1 ] || expected_up=$((expected_up - 1))
up=$(echo "$line" | sed -n 's/.*\[\([U_]*\)\].*/\1/p' | tr -cd 'U' | wc -c)
if echo "$line" | grep -q 'active' && [ "$up" -eq "$expected_up" ] && ! echo "$state" | grep -qi 'fail\|inactive'; then
	check md-md2 PASS "$up/2 up (want $expected_up): $state"
else
	check md-md2 FAIL "$up/2 up (want $expected_up): ${line:-not in /proc/mdstat} state=${state:-?}"
fi

# --- LVM volumes at the planned sizes
size=$(lvs --noheadings --units b --nosuffix -o lv_size pve/root 2>/dev/null | tr -d ' ')
if [ -n "$size" ] && [ "$size" -ge 33672543601 ] && [ "$size" -le 35046933135 ]; then
	check lv-pve-root PASS "$size bytes (plan 34359738368)"
else
	check lv-pve-root FAIL "${size:-missing} bytes, plan 34359738368 (33672543601..35046933135)"
fi
size=$(lvs --noheadings --units b --nosuffix -o lv_size pve/swap 2>/dev/null | tr -d ' ')
if [ -n "$size" ] && [ "$size" -ge 8418135901 ] && [ "$size" -le 8761733283 ]; then
	check lv-pve-swap PASS "$size bytes (plan 8589934592)"
else
	check lv-pve-swap FAIL "${size:-missing} bytes, plan 8589934592 (8418135901..8761733283)"
fi
size=$(lvs --noheadings --units b --nosuffix -o lv_size pve/data 2>/dev/null | tr -d ' ')
if [ -n "$size" ] && [ "$size" -ge 349441726800 ] && [ "$size" -le 480482374350 ]; then
	check lv-pve-data PASS "$size bytes (plan 436802158592)"
else
	check lv-pve-data FAIL "${size:-missing} bytes, plan 436802158592 (349441726800..480482374350)"
fi
size=$(lvs --noheadings --units b --nosuffix -o lv_size backup/save 2>/dev/null | tr -d ' ')
if [ -n "$size" ] && [ "$size" -ge 210453397504 ] && [ "$size" -le 219043332096 ]; then
	check lv-backup-save PASS "$size bytes (plan 214748364800)"
else
	check lv-backup-save FAIL "${size:-missing} bytes, plan 214748364800 (210453397504..219043332096)"
fi

# --- mounts
got=$(findmnt -n -o SOURCE,FSTYPE --mountpoint /boot 2>/dev/null | tr -s ' ')
if [ "$got" = '/dev/md0 ext2' ]; then
	check mount-boot PASS "$got"
else
	check mount-boot FAIL "got '${got:-not mounted}', want '/dev/md0 ext2'"
fi
got=$(findmnt -n -o SOURCE,FSTYPE --mountpoint / 2>/dev/null | tr -s ' ')
if [ "$got" = '/dev/mapper/pve-root ext4' ]; then
	check mount-root PASS "$got"
else
	check mount-root FAIL "got '${got:-not mounted}', want '/dev/mapper/pve-root ext4'"
fi
got=$(findmnt -n -o SOURCE,FSTYPE --mountpoint /var/lib/vz 2>/dev/null | tr -s ' ')
if [ "$got" = '/dev/mapper/pve-data ext4' ]; then
	check mount-var-lib-vz PASS "$got"
else
	check mount-var-lib-vz FAIL "got '${got:-not mounted}', want '/dev/mapper/pve-data ext4'"
fi
got=$(findmnt -n -o SOURCE,FSTYPE --mountpoint /SAVE 2>/dev/null | tr -s ' ')
if [ "$got" = '/dev/mapper/backup-save ext4' ]; then
	check mount-SAVE PASS "$got"
else
	check mount-SAVE FAIL "got '${got:-not mounted}', want '/dev/mapper/backup-save ext4'"
fi

# --- GRUB in the boot area of every boot disk that is present (found by identity)
disks=$(/usr/local/sbin/picaboot-find-disks --by-id --allow-missing 2>&1)
dev=$(echo "$disks" | sed -n 's|^ssd0 \([^ ]*\) .*|\1|p')
if [ -n "$missing" ] && [ "$dev" = - ]; then
	: # removed for this boot
elif [ -z "$dev" ] || [ "$dev" = - ]; then
	check grub-ssd0 FAIL "disk not found: $disks"
else
	mbr=$(head -c 512 "$dev" | tr -c '[:upper:]' '\n' | grep -c '^GRUB$')
	core=$(head -c 65536 "$dev-part1" 2>/dev/null | tr -d '\000' | head -c 64 | wc -c)
	if [ "$mbr" -ge 1 ] && [ "$core" -gt 0 ]; then
		check grub-ssd0 PASS "$dev: GRUB boot code in the MBR, core image in partition 1"
	else
		check grub-ssd0 FAIL "$dev: MBR GRUB marks=$mbr, partition 1 non-zero bytes=$core"
	fi
fi
dev=$(echo "$disks" | sed -n 's|^ssd1 \([^ ]*\) .*|\1|p')
if [ -n "$missing" ] && [ "$dev" = - ]; then
	: # removed for this boot
elif [ -z "$dev" ] || [ "$dev" = - ]; then
	check grub-ssd1 FAIL "disk not found: $disks"
else
	mbr=$(head -c 512 "$dev" | tr -c '[:upper:]' '\n' | grep -c '^GRUB$')
	core=$(head -c 65536 "$dev-part1" 2>/dev/null | tr -d '\000' | head -c 64 | wc -c)
	if [ "$mbr" -ge 1 ] && [ "$core" -gt 0 ]; then
		check grub-ssd1 PASS "$dev: GRUB boot code in the MBR, core image in partition 1"
	else
		check grub-ssd1 FAIL "$dev: MBR GRUB marks=$mbr, partition 1 non-zero bytes=$core"
	fi
fi

# --- kernel command line: the profile's parameters, nothing else but Debian's and the console
cmdline=$(cat /proc/cmdline)
bad=
wants=i915.modeset=0
for want in $wants; do
	case " $cmdline " in *" $want "*) ;; *) bad="$bad missing:$want" ;; esac
done
for p in $cmdline; do
	case "$p" in
	BOOT_IMAGE=* | root=* | ro | quiet | i915.modeset=0) ;;
	*) bad="$bad extra:$p" ;;
	esac
done
if [ -z "$bad" ]; then check kernel-cmdline PASS "$cmdline"; else check kernel-cmdline FAIL "$cmdline:$bad"; fi

# --- NIC names pinned by MAC
got=$(cat /sys/class/net/eth0/address 2>/dev/null)
if [ "$got" = 02:50:1c:a1:00:00 ]; then check nic-eth0 PASS "$got"; else check nic-eth0 FAIL "got '${got:-no such NIC}', want 02:50:1c:a1:00:00"; fi
got=$(cat /sys/class/net/eth1/address 2>/dev/null)
if [ "$got" = 02:50:1c:a1:00:01 ]; then check nic-eth1 PASS "$got"; else check nic-eth1 FAIL "got '${got:-no such NIC}', want 02:50:1c:a1:00:01"; fi

# --- rc.local ran; the public addresses and routes are the profile's
verdict rc-local "rc-local.service active" systemctl is-active --quiet rc-local.service
if ip -o addr show dev vmbr0 | grep -q " inet 91.224.148.84/32 "; then
	check addr-vmbr0-91.224.148.84_32 PASS "91.224.148.84/32 on vmbr0"
else
	check addr-vmbr0-91.224.148.84_32 FAIL "91.224.148.84/32 not on vmbr0: $(ip -o addr show dev vmbr0 2>&1 | tr '\n' ';')"
fi
if ip -o addr show dev vmbr0 | grep -q " inet6 2a03:7220:8080:5400::1/56 "; then
	check addr-vmbr0-2a03:7220:8080:5400::1_56 PASS "2a03:7220:8080:5400::1/56 on vmbr0"
else
	check addr-vmbr0-2a03:7220:8080:5400::1_56 FAIL "2a03:7220:8080:5400::1/56 not on vmbr0: $(ip -o addr show dev vmbr0 2>&1 | tr '\n' ';')"
fi
if ip -o addr show dev vmbr0 | grep -q " inet6 fe80::80:54/64 "; then
	check addr-vmbr0-fe80::80:54_64 PASS "fe80::80:54/64 on vmbr0"
else
	check addr-vmbr0-fe80::80:54_64 FAIL "fe80::80:54/64 not on vmbr0: $(ip -o addr show dev vmbr0 2>&1 | tr '\n' ';')"
fi
if ip -o addr show dev vmbr0 | grep -q " inet 91.224.148.58/32 "; then
	check addr-vmbr0-91.224.148.58_32 PASS "91.224.148.58/32 on vmbr0"
else
	check addr-vmbr0-91.224.148.58_32 FAIL "91.224.148.58/32 not on vmbr0: $(ip -o addr show dev vmbr0 2>&1 | tr '\n' ';')"
fi
if ip -o addr show dev vmbr0 | grep -q " inet6 2a03:7220:8080:3a00::1/56 "; then
	check addr-vmbr0-2a03:7220:8080:3a00::1_56 PASS "2a03:7220:8080:3a00::1/56 on vmbr0"
else
	check addr-vmbr0-2a03:7220:8080:3a00::1_56 FAIL "2a03:7220:8080:3a00::1/56 not on vmbr0: $(ip -o addr show dev vmbr0 2>&1 | tr '\n' ';')"
fi
if ip -o addr show dev vmbr0 | grep -q " inet6 fe80::80:3a/64 "; then
	check addr-vmbr0-fe80::80:3a_64 PASS "fe80::80:3a/64 on vmbr0"
else
	check addr-vmbr0-fe80::80:3a_64 FAIL "fe80::80:3a/64 not on vmbr0: $(ip -o addr show dev vmbr0 2>&1 | tr '\n' ';')"
fi
if ip -o addr show dev vmbr0 | grep -q " inet 91.224.148.59/32 "; then
	check addr-vmbr0-91.224.148.59_32 PASS "91.224.148.59/32 on vmbr0"
else
	check addr-vmbr0-91.224.148.59_32 FAIL "91.224.148.59/32 not on vmbr0: $(ip -o addr show dev vmbr0 2>&1 | tr '\n' ';')"
fi
if ip -o addr show dev vmbr0 | grep -q " inet6 2a03:7220:8080:3b00::1/56 "; then
	check addr-vmbr0-2a03:7220:8080:3b00::1_56 PASS "2a03:7220:8080:3b00::1/56 on vmbr0"
else
	check addr-vmbr0-2a03:7220:8080:3b00::1_56 FAIL "2a03:7220:8080:3b00::1/56 not on vmbr0: $(ip -o addr show dev vmbr0 2>&1 | tr '\n' ';')"
fi
if ip -o addr show dev vmbr0 | grep -q " inet6 fe80::80:3b/64 "; then
	check addr-vmbr0-fe80::80:3b_64 PASS "fe80::80:3b/64 on vmbr0"
else
	check addr-vmbr0-fe80::80:3b_64 FAIL "fe80::80:3b/64 not on vmbr0: $(ip -o addr show dev vmbr0 2>&1 | tr '\n' ';')"
fi
if ip -o addr show dev vmbr0 | grep -q " inet 192.168.10.1/24 "; then
	check addr-vmbr0-192.168.10.1_24 PASS "192.168.10.1/24 on vmbr0"
else
	check addr-vmbr0-192.168.10.1_24 FAIL "192.168.10.1/24 not on vmbr0: $(ip -o addr show dev vmbr0 2>&1 | tr '\n' ';')"
fi
if ip -o addr show dev vmbr1 | grep -q " inet 10.0.42.1/24 "; then
	check addr-vmbr1-10.0.42.1_24 PASS "10.0.42.1/24 on vmbr1"
else
	check addr-vmbr1-10.0.42.1_24 FAIL "10.0.42.1/24 not on vmbr1: $(ip -o addr show dev vmbr1 2>&1 | tr '\n' ';')"
fi
if ip -4 route show default | grep -q "via 91.224.148.0 dev vmbr0"; then
	check route-ipv4-default PASS "default via 91.224.148.0 dev vmbr0"
else
	check route-ipv4-default FAIL "no default via 91.224.148.0 dev vmbr0: $(ip -4 route show default 2>&1 | tr '\n' ';')"
fi
if ip -6 route show default | grep -q "via fe80::31 dev vmbr0"; then
	check route-ipv6-default PASS "default via fe80::31 dev vmbr0"
else
	check route-ipv6-default FAIL "no default via fe80::31 dev vmbr0: $(ip -6 route show default 2>&1 | tr '\n' ';')"
fi

# --- every rendered file holds the rendered bytes with the rendered mode
got=$(sha256sum < /etc/apt/sources.list.d/proxmox.sources 2>/dev/null | cut -d' ' -f1)
mode=$(stat -c %a /etc/apt/sources.list.d/proxmox.sources 2>/dev/null)
if [ ! -e /etc/apt/sources.list.d/proxmox.sources ]; then
	check file:/etc/apt/sources.list.d/proxmox.sources FAIL "missing"
elif [ "$got" != 21733eadab2af49d66ae2301d7b379db41595898d0aa93df9ca96985e5091e6e ]; then
	check file:/etc/apt/sources.list.d/proxmox.sources FAIL "content differs from the rendered file (sha256 $got, rendered 21733eadab2af49d66ae2301d7b379db41595898d0aa93df9ca96985e5091e6e)"
elif [ "$mode" != 644 ]; then
	check file:/etc/apt/sources.list.d/proxmox.sources FAIL "mode $mode, rendered 644"
else
	check file:/etc/apt/sources.list.d/proxmox.sources PASS "644 21733eadab2af49d66ae2301d7b379db41595898d0aa93df9ca96985e5091e6e"
fi
got=$(sha256sum < /etc/default/grub.d/picaboot.cfg 2>/dev/null | cut -d' ' -f1)
mode=$(stat -c %a /etc/default/grub.d/picaboot.cfg 2>/dev/null)
if [ ! -e /etc/default/grub.d/picaboot.cfg ]; then
	check file:/etc/default/grub.d/picaboot.cfg FAIL "missing"
elif [ "$got" != 299a06c28aaf9e3824993f04d95ff987aee289a9042b0557fbd08bfb623063f4 ]; then
	check file:/etc/default/grub.d/picaboot.cfg FAIL "content differs from the rendered file (sha256 $got, rendered 299a06c28aaf9e3824993f04d95ff987aee289a9042b0557fbd08bfb623063f4)"
elif [ "$mode" != 644 ]; then
	check file:/etc/default/grub.d/picaboot.cfg FAIL "mode $mode, rendered 644"
else
	check file:/etc/default/grub.d/picaboot.cfg PASS "644 299a06c28aaf9e3824993f04d95ff987aee289a9042b0557fbd08bfb623063f4"
fi
got=$(sha256sum < /etc/hostname 2>/dev/null | cut -d' ' -f1)
mode=$(stat -c %a /etc/hostname 2>/dev/null)
if [ ! -e /etc/hostname ]; then
	check file:/etc/hostname FAIL "missing"
elif [ "$got" != f87165e305b0f7c4824d3806434f9d0909610a25641ab8773cf92a48c9d77670 ]; then
	check file:/etc/hostname FAIL "content differs from the rendered file (sha256 $got, rendered f87165e305b0f7c4824d3806434f9d0909610a25641ab8773cf92a48c9d77670)"
elif [ "$mode" != 644 ]; then
	check file:/etc/hostname FAIL "mode $mode, rendered 644"
else
	check file:/etc/hostname PASS "644 f87165e305b0f7c4824d3806434f9d0909610a25641ab8773cf92a48c9d77670"
fi
got=$(sha256sum < /etc/hosts 2>/dev/null | cut -d' ' -f1)
mode=$(stat -c %a /etc/hosts 2>/dev/null)
if [ ! -e /etc/hosts ]; then
	check file:/etc/hosts FAIL "missing"
elif [ "$got" != 1e045e31a6966502d28a15e35aef7fd1ae8db5e6bb0085d8ad41c58ce91f0da0 ]; then
	check file:/etc/hosts FAIL "content differs from the rendered file (sha256 $got, rendered 1e045e31a6966502d28a15e35aef7fd1ae8db5e6bb0085d8ad41c58ce91f0da0)"
elif [ "$mode" != 644 ]; then
	check file:/etc/hosts FAIL "mode $mode, rendered 644"
else
	check file:/etc/hosts PASS "644 1e045e31a6966502d28a15e35aef7fd1ae8db5e6bb0085d8ad41c58ce91f0da0"
fi
got=$(head -c 387 /etc/mdadm/mdadm.conf 2>/dev/null | sha256sum | cut -d' ' -f1)
mode=$(stat -c %a /etc/mdadm/mdadm.conf 2>/dev/null)
if [ ! -e /etc/mdadm/mdadm.conf ]; then
	check file:/etc/mdadm/mdadm.conf FAIL "missing"
elif [ "$got" != fd1643a6d214fe477d58a5000c565dbf0ac00f53119ebddc40b6c4231d24c2f8 ]; then
	check file:/etc/mdadm/mdadm.conf FAIL "content differs from the rendered file (sha256 $got, rendered fd1643a6d214fe477d58a5000c565dbf0ac00f53119ebddc40b6c4231d24c2f8, first 387 bytes)"
elif [ "$mode" != 644 ]; then
	check file:/etc/mdadm/mdadm.conf FAIL "mode $mode, rendered 644"
else
	check file:/etc/mdadm/mdadm.conf PASS "644 fd1643a6d214fe477d58a5000c565dbf0ac00f53119ebddc40b6c4231d24c2f8 (rendered lines first; the install appended its arrays)"
fi
got=$(sha256sum < /etc/network/interfaces 2>/dev/null | cut -d' ' -f1)
mode=$(stat -c %a /etc/network/interfaces 2>/dev/null)
if [ ! -e /etc/network/interfaces ]; then
	check file:/etc/network/interfaces FAIL "missing"
elif [ "$got" != 5dd7df598cca7999b11f598aa4211575ee9527f8ab18723accd323bcb2562eee ]; then
	check file:/etc/network/interfaces FAIL "content differs from the rendered file (sha256 $got, rendered 5dd7df598cca7999b11f598aa4211575ee9527f8ab18723accd323bcb2562eee)"
elif [ "$mode" != 644 ]; then
	check file:/etc/network/interfaces FAIL "mode $mode, rendered 644"
else
	check file:/etc/network/interfaces PASS "644 5dd7df598cca7999b11f598aa4211575ee9527f8ab18723accd323bcb2562eee"
fi
got=$(sha256sum < /etc/picaboot/corosync.conf 2>/dev/null | cut -d' ' -f1)
mode=$(stat -c %a /etc/picaboot/corosync.conf 2>/dev/null)
if [ ! -e /etc/picaboot/corosync.conf ]; then
	check file:/etc/picaboot/corosync.conf FAIL "missing"
elif [ "$got" != b046c810ae6ca29d3ae3bd0a5f5cdc87a91488927828d0027ebf7a58741e91a1 ]; then
	check file:/etc/picaboot/corosync.conf FAIL "content differs from the rendered file (sha256 $got, rendered b046c810ae6ca29d3ae3bd0a5f5cdc87a91488927828d0027ebf7a58741e91a1)"
elif [ "$mode" != 644 ]; then
	check file:/etc/picaboot/corosync.conf FAIL "mode $mode, rendered 644"
else
	check file:/etc/picaboot/corosync.conf PASS "644 b046c810ae6ca29d3ae3bd0a5f5cdc87a91488927828d0027ebf7a58741e91a1"
fi
got=$(sha256sum < /etc/rc.local 2>/dev/null | cut -d' ' -f1)
mode=$(stat -c %a /etc/rc.local 2>/dev/null)
if [ ! -e /etc/rc.local ]; then
	check file:/etc/rc.local FAIL "missing"
elif [ "$got" != 1a4af6dce95745d00071df4cc35f9ac0886d1edc2916dd9840f2a9b8fb236c3d ]; then
	check file:/etc/rc.local FAIL "content differs from the rendered file (sha256 $got, rendered 1a4af6dce95745d00071df4cc35f9ac0886d1edc2916dd9840f2a9b8fb236c3d)"
elif [ "$mode" != 755 ]; then
	check file:/etc/rc.local FAIL "mode $mode, rendered 755"
else
	check file:/etc/rc.local PASS "755 1a4af6dce95745d00071df4cc35f9ac0886d1edc2916dd9840f2a9b8fb236c3d"
fi
got=$(sha256sum < /etc/ssh/sshd_config.d/picaboot-save.conf 2>/dev/null | cut -d' ' -f1)
mode=$(stat -c %a /etc/ssh/sshd_config.d/picaboot-save.conf 2>/dev/null)
if [ ! -e /etc/ssh/sshd_config.d/picaboot-save.conf ]; then
	check file:/etc/ssh/sshd_config.d/picaboot-save.conf FAIL "missing"
elif [ "$got" != 682fb347838e7e344dd17df3f8385871e08aa50efcae2aeca5ca90d9d8e80bb3 ]; then
	check file:/etc/ssh/sshd_config.d/picaboot-save.conf FAIL "content differs from the rendered file (sha256 $got, rendered 682fb347838e7e344dd17df3f8385871e08aa50efcae2aeca5ca90d9d8e80bb3)"
elif [ "$mode" != 644 ]; then
	check file:/etc/ssh/sshd_config.d/picaboot-save.conf FAIL "mode $mode, rendered 644"
else
	check file:/etc/ssh/sshd_config.d/picaboot-save.conf PASS "644 682fb347838e7e344dd17df3f8385871e08aa50efcae2aeca5ca90d9d8e80bb3"
fi
got=$(sha256sum < /etc/systemd/network/10-picaboot-eth0.link 2>/dev/null | cut -d' ' -f1)
mode=$(stat -c %a /etc/systemd/network/10-picaboot-eth0.link 2>/dev/null)
if [ ! -e /etc/systemd/network/10-picaboot-eth0.link ]; then
	check file:/etc/systemd/network/10-picaboot-eth0.link FAIL "missing"
elif [ "$got" != 8a688903aa6cf7821fe62cc42232fd4d344e924fbb5b94ea0072dedee0e55da2 ]; then
	check file:/etc/systemd/network/10-picaboot-eth0.link FAIL "content differs from the rendered file (sha256 $got, rendered 8a688903aa6cf7821fe62cc42232fd4d344e924fbb5b94ea0072dedee0e55da2)"
elif [ "$mode" != 644 ]; then
	check file:/etc/systemd/network/10-picaboot-eth0.link FAIL "mode $mode, rendered 644"
else
	check file:/etc/systemd/network/10-picaboot-eth0.link PASS "644 8a688903aa6cf7821fe62cc42232fd4d344e924fbb5b94ea0072dedee0e55da2"
fi
got=$(sha256sum < /etc/systemd/network/10-picaboot-eth1.link 2>/dev/null | cut -d' ' -f1)
mode=$(stat -c %a /etc/systemd/network/10-picaboot-eth1.link 2>/dev/null)
if [ ! -e /etc/systemd/network/10-picaboot-eth1.link ]; then
	check file:/etc/systemd/network/10-picaboot-eth1.link FAIL "missing"
elif [ "$got" != ec8214bfddead9299494069cb9cada5e353070c0e38dbdbdaac2dc76d659a3d4 ]; then
	check file:/etc/systemd/network/10-picaboot-eth1.link FAIL "content differs from the rendered file (sha256 $got, rendered ec8214bfddead9299494069cb9cada5e353070c0e38dbdbdaac2dc76d659a3d4)"
elif [ "$mode" != 644 ]; then
	check file:/etc/systemd/network/10-picaboot-eth1.link FAIL "mode $mode, rendered 644"
else
	check file:/etc/systemd/network/10-picaboot-eth1.link PASS "644 ec8214bfddead9299494069cb9cada5e353070c0e38dbdbdaac2dc76d659a3d4"
fi
got=$(sha256sum < /etc/systemd/system/corosync.service.d/picaboot.conf 2>/dev/null | cut -d' ' -f1)
mode=$(stat -c %a /etc/systemd/system/corosync.service.d/picaboot.conf 2>/dev/null)
if [ ! -e /etc/systemd/system/corosync.service.d/picaboot.conf ]; then
	check file:/etc/systemd/system/corosync.service.d/picaboot.conf FAIL "missing"
elif [ "$got" != 6f559b0eda861302c24aa16256d6f01e874ce194b8a0c091c49b6003e8b64beb ]; then
	check file:/etc/systemd/system/corosync.service.d/picaboot.conf FAIL "content differs from the rendered file (sha256 $got, rendered 6f559b0eda861302c24aa16256d6f01e874ce194b8a0c091c49b6003e8b64beb)"
elif [ "$mode" != 644 ]; then
	check file:/etc/systemd/system/corosync.service.d/picaboot.conf FAIL "mode $mode, rendered 644"
else
	check file:/etc/systemd/system/corosync.service.d/picaboot.conf PASS "644 6f559b0eda861302c24aa16256d6f01e874ce194b8a0c091c49b6003e8b64beb"
fi
got=$(sha256sum < /etc/systemd/system/picaboot-proxmox.service 2>/dev/null | cut -d' ' -f1)
mode=$(stat -c %a /etc/systemd/system/picaboot-proxmox.service 2>/dev/null)
if [ ! -e /etc/systemd/system/picaboot-proxmox.service ]; then
	check file:/etc/systemd/system/picaboot-proxmox.service FAIL "missing"
elif [ "$got" != 49d9c1459823202a2d05154ea1e2914850617549b18c427b805180740a2cd4d2 ]; then
	check file:/etc/systemd/system/picaboot-proxmox.service FAIL "content differs from the rendered file (sha256 $got, rendered 49d9c1459823202a2d05154ea1e2914850617549b18c427b805180740a2cd4d2)"
elif [ "$mode" != 644 ]; then
	check file:/etc/systemd/system/picaboot-proxmox.service FAIL "mode $mode, rendered 644"
else
	check file:/etc/systemd/system/picaboot-proxmox.service PASS "644 49d9c1459823202a2d05154ea1e2914850617549b18c427b805180740a2cd4d2"
fi
got=$(sha256sum < /etc/systemd/system/picaboot-save-pull.service 2>/dev/null | cut -d' ' -f1)
mode=$(stat -c %a /etc/systemd/system/picaboot-save-pull.service 2>/dev/null)
if [ ! -e /etc/systemd/system/picaboot-save-pull.service ]; then
	check file:/etc/systemd/system/picaboot-save-pull.service FAIL "missing"
elif [ "$got" != 43accfca9eb8a5bd3637268dd4c812b333285cef65ac97281b6b912054f6ee31 ]; then
	check file:/etc/systemd/system/picaboot-save-pull.service FAIL "content differs from the rendered file (sha256 $got, rendered 43accfca9eb8a5bd3637268dd4c812b333285cef65ac97281b6b912054f6ee31)"
elif [ "$mode" != 644 ]; then
	check file:/etc/systemd/system/picaboot-save-pull.service FAIL "mode $mode, rendered 644"
else
	check file:/etc/systemd/system/picaboot-save-pull.service PASS "644 43accfca9eb8a5bd3637268dd4c812b333285cef65ac97281b6b912054f6ee31"
fi
got=$(sha256sum < /etc/systemd/system/picaboot-save-pull.timer 2>/dev/null | cut -d' ' -f1)
mode=$(stat -c %a /etc/systemd/system/picaboot-save-pull.timer 2>/dev/null)
if [ ! -e /etc/systemd/system/picaboot-save-pull.timer ]; then
	check file:/etc/systemd/system/picaboot-save-pull.timer FAIL "missing"
elif [ "$got" != af3afe05c3b7a563817c907691cca98ba5971b1bad4c63b9adbe78ee5637419f ]; then
	check file:/etc/systemd/system/picaboot-save-pull.timer FAIL "content differs from the rendered file (sha256 $got, rendered af3afe05c3b7a563817c907691cca98ba5971b1bad4c63b9adbe78ee5637419f)"
elif [ "$mode" != 644 ]; then
	check file:/etc/systemd/system/picaboot-save-pull.timer FAIL "mode $mode, rendered 644"
else
	check file:/etc/systemd/system/picaboot-save-pull.timer PASS "644 af3afe05c3b7a563817c907691cca98ba5971b1bad4c63b9adbe78ee5637419f"
fi
got=$(sha256sum < /etc/systemd/system/picaboot-storage-setup.service 2>/dev/null | cut -d' ' -f1)
mode=$(stat -c %a /etc/systemd/system/picaboot-storage-setup.service 2>/dev/null)
if [ ! -e /etc/systemd/system/picaboot-storage-setup.service ]; then
	check file:/etc/systemd/system/picaboot-storage-setup.service FAIL "missing"
elif [ "$got" != a68b522e2b573d67c339422dfc6954b496203b801a9083619b69f2971d3384b8 ]; then
	check file:/etc/systemd/system/picaboot-storage-setup.service FAIL "content differs from the rendered file (sha256 $got, rendered a68b522e2b573d67c339422dfc6954b496203b801a9083619b69f2971d3384b8)"
elif [ "$mode" != 644 ]; then
	check file:/etc/systemd/system/picaboot-storage-setup.service FAIL "mode $mode, rendered 644"
else
	check file:/etc/systemd/system/picaboot-storage-setup.service PASS "644 a68b522e2b573d67c339422dfc6954b496203b801a9083619b69f2971d3384b8"
fi
got=$(sha256sum < /root/.ssh/authorized_keys 2>/dev/null | cut -d' ' -f1)
mode=$(stat -c %a /root/.ssh/authorized_keys 2>/dev/null)
if [ ! -e /root/.ssh/authorized_keys ]; then
	check file:/root/.ssh/authorized_keys FAIL "missing"
elif [ "$got" != f8b7c38c024bef4339533681623a1687b81e614c21f5467fad3b62b0e043f7bb ]; then
	check file:/root/.ssh/authorized_keys FAIL "content differs from the rendered file (sha256 $got, rendered f8b7c38c024bef4339533681623a1687b81e614c21f5467fad3b62b0e043f7bb)"
elif [ "$mode" != 600 ]; then
	check file:/root/.ssh/authorized_keys FAIL "mode $mode, rendered 600"
else
	check file:/root/.ssh/authorized_keys PASS "600 f8b7c38c024bef4339533681623a1687b81e614c21f5467fad3b62b0e043f7bb"
fi
got=$(sha256sum < /usr/local/sbin/picaboot-find-disks 2>/dev/null | cut -d' ' -f1)
mode=$(stat -c %a /usr/local/sbin/picaboot-find-disks 2>/dev/null)
if [ ! -e /usr/local/sbin/picaboot-find-disks ]; then
	check file:/usr/local/sbin/picaboot-find-disks FAIL "missing"
elif [ "$got" != 88a17a17df04d17d98f13b902d3d3e8c7a1347329b1017a3a307ed59e91e8a80 ]; then
	check file:/usr/local/sbin/picaboot-find-disks FAIL "content differs from the rendered file (sha256 $got, rendered 88a17a17df04d17d98f13b902d3d3e8c7a1347329b1017a3a307ed59e91e8a80)"
elif [ "$mode" != 755 ]; then
	check file:/usr/local/sbin/picaboot-find-disks FAIL "mode $mode, rendered 755"
else
	check file:/usr/local/sbin/picaboot-find-disks PASS "755 88a17a17df04d17d98f13b902d3d3e8c7a1347329b1017a3a307ed59e91e8a80"
fi
got=$(sha256sum < /usr/local/sbin/picaboot-proxmox 2>/dev/null | cut -d' ' -f1)
mode=$(stat -c %a /usr/local/sbin/picaboot-proxmox 2>/dev/null)
if [ ! -e /usr/local/sbin/picaboot-proxmox ]; then
	check file:/usr/local/sbin/picaboot-proxmox FAIL "missing"
elif [ "$got" != b1b8df7d5645086c89f7fba79f1d469e617516e10f6ece6cb8729764d969e68d ]; then
	check file:/usr/local/sbin/picaboot-proxmox FAIL "content differs from the rendered file (sha256 $got, rendered b1b8df7d5645086c89f7fba79f1d469e617516e10f6ece6cb8729764d969e68d)"
elif [ "$mode" != 755 ]; then
	check file:/usr/local/sbin/picaboot-proxmox FAIL "mode $mode, rendered 755"
else
	check file:/usr/local/sbin/picaboot-proxmox PASS "755 b1b8df7d5645086c89f7fba79f1d469e617516e10f6ece6cb8729764d969e68d"
fi
got=$(sha256sum < /usr/local/sbin/picaboot-save-pull 2>/dev/null | cut -d' ' -f1)
mode=$(stat -c %a /usr/local/sbin/picaboot-save-pull 2>/dev/null)
if [ ! -e /usr/local/sbin/picaboot-save-pull ]; then
	check file:/usr/local/sbin/picaboot-save-pull FAIL "missing"
elif [ "$got" != 4d1fc36bf786f946134a7d8c2f789461f968ffb06c36c3e581b951b622a0af94 ]; then
	check file:/usr/local/sbin/picaboot-save-pull FAIL "content differs from the rendered file (sha256 $got, rendered 4d1fc36bf786f946134a7d8c2f789461f968ffb06c36c3e581b951b622a0af94)"
elif [ "$mode" != 755 ]; then
	check file:/usr/local/sbin/picaboot-save-pull FAIL "mode $mode, rendered 755"
else
	check file:/usr/local/sbin/picaboot-save-pull PASS "755 4d1fc36bf786f946134a7d8c2f789461f968ffb06c36c3e581b951b622a0af94"
fi
got=$(sha256sum < /usr/local/sbin/picaboot-storage-setup 2>/dev/null | cut -d' ' -f1)
mode=$(stat -c %a /usr/local/sbin/picaboot-storage-setup 2>/dev/null)
if [ ! -e /usr/local/sbin/picaboot-storage-setup ]; then
	check file:/usr/local/sbin/picaboot-storage-setup FAIL "missing"
elif [ "$got" != 495e0f44bc98b5c45df063122a52a50ed7f7691d82b8f08ba48a7323a5f4b564 ]; then
	check file:/usr/local/sbin/picaboot-storage-setup FAIL "content differs from the rendered file (sha256 $got, rendered 495e0f44bc98b5c45df063122a52a50ed7f7691d82b8f08ba48a7323a5f4b564)"
elif [ "$mode" != 755 ]; then
	check file:/usr/local/sbin/picaboot-storage-setup FAIL "mode $mode, rendered 755"
else
	check file:/usr/local/sbin/picaboot-storage-setup PASS "755 495e0f44bc98b5c45df063122a52a50ed7f7691d82b8f08ba48a7323a5f4b564"
fi
keys=$(grep -c '^ssh-' /root/.ssh/authorized_keys 2>/dev/null || echo 0)
if [ "$keys" -ge 1 ]; then
	check authorized-keys PASS "root's authorized_keys holds $keys key(s)"
else
	check authorized-keys FAIL "root's authorized_keys holds $keys key(s), the profile has 1"
fi
verdict ssh "ssh.service active" systemctl is-active --quiet ssh.service
verdict first-boot-storage "picaboot-storage-setup.service ran" test -e /var/lib/picaboot/storage-setup.done
# Proxmox manages the cluster: pmxcfs imports an /etc/corosync/corosync.conf it finds at its
# first start (and `pvecm create` then refuses), and a join refuses a node with an authkey.
present=
for f in /etc/corosync/corosync.conf /etc/corosync/authkey; do
	if [ -e "$f" ]; then
		present="$present $f"
	fi
done
if [ -z "$present" ]; then
	check corosync-unmanaged PASS "no /etc/corosync/corosync.conf or authkey: pmxcfs will hold the cluster config (picaboot cluster form)"
else
	check corosync-unmanaged FAIL "present:$present (Proxmox-managed cluster)"
fi
load=$(systemctl show --property=LoadState --value picaboot-proxmox.service 2>&1)
if [ "$load" = loaded ]; then
	check proxmox-unit PASS "picaboot-proxmox.service is loaded by systemd ($(systemctl is-active picaboot-proxmox.service 2>&1); journalctl -u picaboot-proxmox shows its steps)"
else
	check proxmox-unit FAIL "picaboot-proxmox.service: LoadState $load"
fi

# --- the harness key (test only) never reached the installed system's trust
if grep -rlsF 'picaboot install harness (test only, ephemeral)' /etc/apt /usr/share/keyrings >/dev/null 2>&1; then
	check harness-key-absent FAIL "$(grep -rlsF 'picaboot install harness (test only, ephemeral)' /etc/apt /usr/share/keyrings | tr '\n' ' ')"
else
	check harness-key-absent PASS "no trace of the test udeb key in /etc/apt or /usr/share/keyrings"
fi

echo "PICABOOT-DONE rc=$failed" > "$console"
exit "$failed"
