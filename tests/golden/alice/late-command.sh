#!/bin/sh
# late_command of alice, rendered by picaboot: installs the host's files from the
# initrd (/picaboot/rootfs) into /target with their modes, then finishes the setup.
set -e
src=/picaboot/rootfs
log() { echo "picaboot: $*"; logger -t picaboot "$*" 2>/dev/null || true; }

put() { # put MODE PATH
	mkdir -p "/target$(dirname "$2")"
	cp "$src$2" "/target$2"
	chmod "$1" "/target$2"
}
put 0644 /etc/apt/sources.list.d/proxmox.sources
put 0644 /etc/default/grub.d/picaboot.cfg
put 0644 /etc/hostname
put 0644 /etc/hosts
put 0644 /etc/mdadm/mdadm.conf
put 0644 /etc/network/interfaces
put 0644 /etc/picaboot/corosync.conf
put 0755 /etc/rc.local
put 0644 /etc/ssh/sshd_config.d/picaboot-save.conf
put 0644 /etc/systemd/network/10-picaboot-eth0.link
put 0644 /etc/systemd/network/10-picaboot-eth1.link
put 0644 /etc/systemd/system/corosync.service.d/picaboot.conf
put 0644 /etc/systemd/system/picaboot-proxmox.service
put 0644 /etc/systemd/system/picaboot-save-pull.service
put 0644 /etc/systemd/system/picaboot-save-pull.timer
put 0644 /etc/systemd/system/picaboot-storage-setup.service
put 0600 /root/.ssh/authorized_keys
put 0755 /usr/local/sbin/picaboot-find-disks
put 0755 /usr/local/sbin/picaboot-proxmox
put 0755 /usr/local/sbin/picaboot-save-pull
put 0755 /usr/local/sbin/picaboot-storage-setup
chmod 0700 /target/root/.ssh 2>/dev/null || true
log "installed 21 host files"

# Arrays the installer built have random UUIDs: record them after the rendered lines.
# shellcheck disable=SC2016 # expanded by the shell inside the target, not here
in-target sh -c 'mdadm --detail --scan | while read -r line; do grep -qF "$line" /etc/mdadm/mdadm.conf || echo "$line"; done >> /etc/mdadm/mdadm.conf'
in-target systemctl enable picaboot-proxmox.service
in-target systemctl enable picaboot-storage-setup.service
in-target systemctl enable picaboot-save-pull.timer
in-target update-initramfs -u -k all
in-target update-grub
log "late_command done"

# The end of the install, reported to `picaboot serve` when the installer's boot line names it
# (`netboot --report-to`): serve then answers this host's boot.ipxe with a boot from disk.
read -r cmdline < /proc/cmdline || true
set -f
for word in $cmdline; do
	case "$word" in
	picaboot.progress=http://*)
		url=${word#picaboot.progress=}
		if wget -q -O /dev/null "$url?stage=done&status=ok"; then
			log "reported the end of the install to $url"
		else
			log "could not report the end of the install to $url"
		fi
		;;
	esac
done
set +f
