//! A BIOS-bootable raw disk from a root tree, with no loop device and no mount: an MBR with one
//! partition from 1 MiB to the end, `mkfs.ext4 -d TREE -E offset=1MiB` into it, and GRUB
//! written the way `grub-bios-setup` embeds it: `boot.img`'s code in the MBR (the partition
//! table kept), `core.img` (made by the guest's own `grub-mkimage`, from the verified archive)
//! in the gap after it. `diskboot.img` reads the rest of core from sector 2 on, which is its
//! default blocklist (grub-mkimage fills in the length).

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::VmError;
use crate::exec;

/// Where the partition starts (bytes): 1 MiB, the gap that holds core.img.
pub const PART_OFFSET: u64 = 1 << 20;

/// Modules built into core.img: enough to find the root by UUID and read grub.cfg from it;
/// the rest load from `/boot/grub/i386-pc` (copied there from grub-pc-bin).
pub const CORE_MODULES: &[&str] = &[
    "biosdisk",
    "part_msdos",
    "ext2",
    "search",
    "search_fs_uuid",
    "configfile",
    "normal",
    "linux",
    "serial",
    "terminal",
    "echo",
    "test",
];

/// Bytes of the MBR that hold boot code (the partition table and signature follow).
const MBR_CODE: usize = 440;

/// Fixed mkfs time (`E2FSPROGS_FAKE_TIME`), so that two builds of the same tree agree on the
/// superblock's times.
const FS_TIME: &str = "1700000000";

/// Makes `out` (`size_mib` MiB, sparse) from `tree`: root filesystem with `uuid`, GRUB whose
/// embedded config finds it by that UUID.
pub fn make(tree: &Path, uuid: &str, out: &Path, size_mib: u64) -> Result<(), VmError> {
    let core = grub_core(tree, uuid)?;
    let boot_img_path = tree.join("usr/lib/grub/i386-pc/boot.img");
    let boot_img = std::fs::read(&boot_img_path).map_err(VmError::io("read", &boot_img_path))?;
    if boot_img.len() != 512 || core.len() as u64 > PART_OFFSET - 1024 {
        return Err(VmError::Io {
            what: "unexpected GRUB image sizes in",
            path: boot_img_path,
            source: std::io::Error::other(format!(
                "boot.img {} B, core.img {} B",
                boot_img.len(),
                core.len()
            )),
        });
    }
    let f = std::fs::File::create(out).map_err(VmError::io("create", out))?;
    f.set_len(size_mib << 20)
        .map_err(VmError::io("size", out))?;
    drop(f);
    exec::run_deadline(
        "partition the VM disk",
        Command::new("sfdisk")
            .args(["--quiet", "--no-reread", "--no-tell-kernel"])
            .arg(out),
        Some(
            format!(
                "label: dos\nlabel-id: 0x{}\nstart={}, type=83, bootable\n",
                &uuid[..8],
                PART_OFFSET / 512
            )
            .as_bytes(),
        ),
        Duration::from_secs(60),
    )?;
    exec::run_deadline(
        "make the VM's root filesystem",
        Command::new("mkfs.ext4")
            .env("E2FSPROGS_FAKE_TIME", FS_TIME)
            .args(["-q", "-F", "-L", "root", "-U", uuid])
            .arg("-E")
            .arg(format!("offset={PART_OFFSET},hash_seed={uuid}"))
            .arg("-d")
            .arg(tree)
            .arg(out)
            .arg(format!("{}M", size_mib - 1)),
        None,
        Duration::from_secs(600),
    )?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(out)
        .map_err(VmError::io("open", out))?;
    f.write_all(&boot_img[..MBR_CODE])
        .and_then(|_| f.seek(SeekFrom::Start(512)))
        .and_then(|_| f.write_all(&core))
        .and_then(|_| f.sync_all())
        .map_err(VmError::io("write GRUB into", out))
}

/// The config built into core.img: the serial console first (so that a GRUB that cannot go
/// on says why where Proxmox's serial console and the test read), then the root by UUID.
pub fn early_config(uuid: &str) -> String {
    format!(
        "serial --unit=0 --speed=115200\nterminal_input serial console\nterminal_output serial console\n\
         search --no-floppy --fs-uuid --set=root {uuid}\nset prefix=($root)/boot/grub\n"
    )
}

/// core.img for i386-pc made by the tree's own `grub-mkimage`, with an embedded config that
/// finds the root filesystem by UUID and reads its `/boot/grub/grub.cfg`.
fn grub_core(tree: &Path, uuid: &str) -> Result<Vec<u8>, VmError> {
    let work = tree.join("tmp/picaboot-grub");
    std::fs::create_dir_all(&work).map_err(VmError::io("create", &work))?;
    std::fs::write(work.join("early.cfg"), early_config(uuid))
        .map_err(VmError::io("write", &work))?;
    exec::run_deadline(
        "make GRUB's core image (grub-mkimage in the VM's tree)",
        Command::new("chroot")
            .arg(tree)
            .args([
                "grub-mkimage",
                "-O",
                "i386-pc",
                "-o",
                "/tmp/picaboot-grub/core.img",
                "-c",
                "/tmp/picaboot-grub/early.cfg",
                "-p",
                "/boot/grub",
            ])
            .args(CORE_MODULES),
        None,
        Duration::from_secs(120),
    )?;
    let core = std::fs::read(work.join("core.img")).map_err(VmError::io("read", &work))?;
    std::fs::remove_dir_all(&work).map_err(VmError::io("remove", &work))?;
    let mods = tree.join("usr/lib/grub/i386-pc");
    let dest = tree.join("boot/grub/i386-pc");
    std::fs::create_dir_all(&dest).map_err(VmError::io("create", &dest))?;
    for e in std::fs::read_dir(&mods)
        .map_err(VmError::io("read", &mods))?
        .flatten()
    {
        let name = e.file_name();
        if name.to_string_lossy().ends_with(".mod") || name.to_string_lossy().ends_with(".lst") {
            std::fs::copy(e.path(), dest.join(&name)).map_err(VmError::io("copy", &dest))?;
        }
    }
    Ok(core)
}
