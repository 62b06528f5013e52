#!/bin/sh
# partman/early_command of bob, rendered by picaboot from hosts/bob.toml.
# Runs in the installer once the disks are detected and before partman reads its answers:
# finds the profile's disks by identity (picaboot-find-disks) and sets the partitioning disks,
# the RAID recipe and GRUB's boot devices from what it found. The values in preseed.cfg are
# the profile's device hints; they are replaced here. A disk that matches nothing (or an
# ambiguous match) stops the install with the reason on the console and in the syslog.
set -u
log() {
	echo "picaboot: $*" >&2
	logger -t picaboot "$*" 2>/dev/null || true
}
report() { :; }

if ! found=$(sh /picaboot/rootfs/usr/local/sbin/picaboot-find-disks 2>/tmp/picaboot-disks.err); then
	log "DISKS FAILED: $(cat /tmp/picaboot-disks.err)"
	report fail
	exit 1
fi
log "disks by identity: $(echo "$found" | tr '\n' ';')"

# sub TEXT: replaces @ID@ (disk) and @ID@p (partition prefix) with what was found.
sub() {
	s=$1
	for id in ssd0 ssd1; do
		dev=$(echo "$found" | sed -n "s|^$id \([^ ]*\) .*|\1|p")
		[ -n "$dev" ] || continue
		case "$dev" in
		*[0-9]) part=${dev}p ;;
		*) part=$dev ;;
		esac
		s=$(echo "$s" | sed -e "s|@$id@p|$part|g" -e "s|@$id@|$dev|g")
	done
	echo "$s"
}

disks=$(sub '@ssd0@ @ssd1@')
raid=$(sub '1 2 0 ext2 /boot @ssd0@p2#@ssd1@p2 . 1 2 0 lvm - @ssd0@p3#@ssd1@p3 .')
grub=$(sub '@ssd0@ @ssd1@')
case "$disks$raid$grub" in
*@*)
	log "DISKS FAILED: a disk of the layout was not resolved: $disks / $raid / $grub"
	report fail
	exit 1
	;;
esac
debconf-set partman-auto/disk "$disks"
debconf-set partman-auto-raid/recipe "$raid"
debconf-set grub-installer/bootdev "$grub"
log "partman-auto/disk=$disks; grub-installer/bootdev=$grub"
report ok
