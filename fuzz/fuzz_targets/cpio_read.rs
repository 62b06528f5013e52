//! The newc cpio reader (initrds): any bytes give entries or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = picaboot::archive::cpio::read_all(data, "fuzz.cpio") {
        for e in &entries {
            let _ = (e.is_file(), e.is_dir(), e.is_symlink());
        }
    }
});
