//! The `.deb` reader (ar + data.tar.{xz,zst,gz}): any file gives entries or an error.
#![no_main]
use std::io::Write;

use libfuzzer_sys::fuzz_target;
use picaboot::archive::deb::{visit_data, Visit};

fuzz_target!(|data: &[u8]| {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(data).expect("write");
    let _ = visit_data(f.path(), |e| {
        let _ = (e.path.len(), e.header.entry_type());
        let mut buf = [0u8; 4096];
        // Bounded: a decompression bomb must not make the fuzzer run out of memory.
        let _ = e.reader.read(&mut buf);
        Ok(Visit::Continue)
    });
});
