//! The `[install]` settings, layered site.toml < hardware profile < host profile (later
//! wins), each value checked and its problem reported in the file of the layer that set it.

use std::collections::BTreeMap;

use super::{parse_mirror, valid_name, Checker};
use crate::profile::model::*;
use crate::profile::raw::*;
use crate::profile::source::SourceFile;
use crate::profile::text;

/// The merged settings and which layer set each.
struct Layered<'a> {
    merged: RawInstall,
    origin: BTreeMap<&'static str, usize>,
    layers: &'a [(&'a RawInstall, &'a SourceFile)],
    complete: bool,
}

impl<'a> Layered<'a> {
    fn new(layers: &'a [(&'a RawInstall, &'a SourceFile)], complete: bool) -> Self {
        let mut m = RawInstall::default();
        let mut origin: BTreeMap<&'static str, usize> = BTreeMap::new();
        for (i, (l, _)) in layers.iter().enumerate() {
            macro_rules! take {
                ($f:ident, $key:literal) => {
                    if l.$f.is_some() {
                        m.$f = l.$f.clone();
                        origin.insert($key, i);
                    }
                };
            }
            take!(suite, "suite");
            take!(mirror, "mirror");
            take!(proxy, "proxy");
            take!(locale, "locale");
            take!(keyboard, "keyboard");
            take!(timezone, "timezone");
            take!(frontend, "frontend");
            take!(kernel_params, "kernel-params");
            take!(packages, "packages");
        }
        Layered {
            merged: m,
            origin,
            layers,
            complete,
        }
    }

    /// A problem of `key`, reported in the file of the layer that set it.
    fn err(&self, c: &mut Checker<'_>, key: &'static str, field: String, reason: String) {
        let src = self.origin.get(key).map_or(c.src, |&i| self.layers[i].1);
        let d = src.diag(field, reason);
        c.diags.push(d);
    }

    /// The value, or (when every layer parsed) a problem saying no layer sets it.
    fn required(&self, c: &mut Checker<'_>, name: &str, v: &Option<String>) -> Option<String> {
        if v.is_none() && self.complete {
            c.err(
                format!("install.{name}"),
                "not set in site.toml, the hardware profile or the host profile",
            );
        }
        v.clone()
    }

    /// `value` when `ok` says so, else a problem `install.KEY: `value` is not WHAT`.
    fn word(
        &self,
        c: &mut Checker<'_>,
        key: &'static str,
        value: Option<String>,
        ok: impl Fn(&str) -> bool,
        what: &str,
    ) -> Option<String> {
        value.filter(|v| {
            let good = ok(v);
            if !good {
                self.err(
                    c,
                    key,
                    format!("install.{key}"),
                    format!("`{v}` is not {what}"),
                );
            }
            good
        })
    }

    fn proxy(&self, c: &mut Checker<'_>) -> Option<String> {
        let proxy = self.merged.proxy.clone().filter(|p| !p.is_empty());
        if let Some(p) = &proxy {
            if !(p.starts_with("http://") || p.starts_with("https://")) || !text::url_chars(p) {
                self.err(
                    c,
                    "proxy",
                    "install.proxy".to_string(),
                    format!("`{p}` is not an http:// or https:// URL"),
                );
            }
        }
        proxy
    }

    fn frontend(&self, c: &mut Checker<'_>, text: String) -> Option<Frontend> {
        match text.as_str() {
            "gtk" | "graphical" => Some(Frontend::Gtk),
            "text" => Some(Frontend::Text),
            other => {
                self.err(
                    c,
                    "frontend",
                    "install.frontend".to_string(),
                    format!("`{other}` is not `gtk` or `text`"),
                );
                None
            }
        }
    }

    /// Kernel parameters (the kernel's grammar) and Debian package names (Policy 5.6.1).
    fn lists(&self, c: &mut Checker<'_>) -> (Vec<String>, Vec<String>) {
        let kernel_params = self.merged.kernel_params.clone().unwrap_or_default();
        for (i, p) in kernel_params.iter().enumerate() {
            if let Err(e) = text::kernel_param(p) {
                self.err(c, "kernel-params", format!("install.kernel-params[{i}]"), e);
            }
        }
        let packages = self.merged.packages.clone().unwrap_or_default();
        for (i, p) in packages.iter().enumerate() {
            if !text::debian_package(p) {
                self.err(
                    c,
                    "packages",
                    format!("install.packages[{i}]"),
                    format!("`{p}` is not a Debian package name (Debian Policy 5.6.1: lower-case letters, digits and `+.-`, at least two, starting with a letter or digit)"),
                );
            }
        }
        (kernel_params, packages)
    }
}

/// Layers install settings (later wins) and checks each value; a problem is reported in the
/// file of the layer that set the value. `complete` is false when a layer failed to parse, in
/// which case unset values are not reported (the parse error is).
pub(crate) fn verify_install(
    c: &mut Checker<'_>,
    layers: &[(&RawInstall, &SourceFile)],
    complete: bool,
) -> Option<Install> {
    let l = Layered::new(layers, complete);
    let m = &l.merged;
    let suite = l.required(c, "suite", &m.suite);
    let mirror = l.required(c, "mirror", &m.mirror);
    let locale = l.required(c, "locale", &m.locale);
    let keyboard = l.required(c, "keyboard", &m.keyboard);
    let timezone = l.required(c, "timezone", &m.timezone);
    let frontend = l.required(c, "frontend", &m.frontend);

    let suite_ok = |s: &str| valid_name(s, 32) && s.chars().all(|c| c.is_ascii_lowercase());
    let suite = l.word(c, "suite", suite, suite_ok, "a Debian suite codename")?;
    let mirror = mirror.and_then(|u| {
        parse_mirror(&u)
            .map_err(|e| l.err(c, "mirror", "install.mirror".into(), e))
            .ok()
    })?;
    let proxy = l.proxy(c);
    let locale = l.word(
        c,
        "locale",
        locale,
        text::locale,
        "a locale such as en_US.UTF-8",
    )?;
    let timezone = l.word(
        c,
        "timezone",
        timezone,
        text::timezone,
        "a time zone such as Europe/Paris",
    )?;
    let keyboard = l.word(
        c,
        "keyboard",
        keyboard,
        text::keymap,
        "an xkb keymap such as fr or us",
    );
    let frontend = l.frontend(c, frontend?)?;
    let (kernel_params, packages) = l.lists(c);
    Some(Install {
        suite,
        mirror,
        proxy,
        locale,
        keyboard: keyboard?,
        timezone,
        frontend,
        kernel_params,
        packages,
    })
}
