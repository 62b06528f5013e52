//! The Debian index parsers: InRelease (clearsigned framing), Release, Packages, RFC 2822
//! dates. The first byte picks the parser, the rest is the text.
#![no_main]
use libfuzzer_sys::fuzz_target;
use picaboot::debian::index::{parse_rfc2822, Packages, Release};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            // InRelease as `serve --mirror-proxy` splits it, and as `--insecure` strips it.
            if let Ok(text) = std::str::from_utf8(rest) {
                if let Ok((release, _sig)) = picaboot::mirror::split_inrelease(text) {
                    let _ = Release::parse("trixie", &release);
                }
            }
            if let Some(text) = picaboot::debian::strip_clearsign(rest) {
                let r = Release::parse("trixie", &text);
                if let Some(d) = r.fields.get("Date") {
                    let _ = parse_rfc2822(d);
                }
            }
        }
        1 => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            let names: Vec<String> = text
                .lines()
                .filter_map(|l| l.strip_prefix("Package: "))
                .take(8)
                .map(str::to_string)
                .collect();
            let p = Packages::new("fuzz/Packages", text.to_string());
            // An incomplete paragraph (no Filename, Size or SHA256) is skipped by design (found
            // by this target: see index.rs `an_incomplete_paragraph_is_not_a_package`); what is
            // returned must be the package asked for.
            for n in &names {
                for pkg in p.all(n) {
                    assert_eq!(&pkg.name, n.trim(), "asked for {n:?}");
                }
                let _ = p.get(n);
            }
        }
        _ => {
            if let Ok(text) = std::str::from_utf8(rest) {
                let _ = parse_rfc2822(text);
            }
        }
    }
});
