//! The one deb822 reader (Debian control-file syntax: `InRelease`/`Release`, `Packages`,
//! apt's `*.sources`): paragraphs separated by blank lines, `Name: value` fields, continuation
//! lines starting with a space or a tab, `#` comment lines. Field names compare
//! case-insensitively, as deb822 says.

/// One field: its name, the value on its first line (trimmed) and its continuation lines
/// (without the leading white space).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'a> {
    /// Field name as written.
    pub name: &'a str,
    /// Value on the first line, trimmed (empty for multi-line lists such as `SHA256:`).
    pub value: &'a str,
    /// Continuation lines, trimmed.
    pub lines: Vec<&'a str>,
}

/// One paragraph: its fields in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paragraph<'a> {
    /// The fields, in file order.
    pub fields: Vec<Field<'a>>,
}

impl<'a> Paragraph<'a> {
    /// Parses the first paragraph of `text` (everything up to the first blank line).
    pub fn parse(text: &'a str) -> Self {
        paragraphs(text).next().unwrap_or_default()
    }

    /// The field `name` (case-insensitive).
    pub fn field(&self, name: &str) -> Option<&Field<'a>> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The first-line value of `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.field(name).map(|f| f.value)
    }
}

/// The paragraphs of `text`, in order (blank lines and comment lines separate nothing more).
pub fn paragraphs(text: &str) -> impl Iterator<Item = Paragraph<'_>> {
    let mut lines = text.lines().peekable();
    std::iter::from_fn(move || {
        while lines.peek().is_some_and(|l| l.trim().is_empty()) {
            lines.next();
        }
        lines.peek()?;
        let mut p = Paragraph::default();
        while let Some(line) = lines.next_if(|l| !l.trim().is_empty()) {
            if line.starts_with('#') {
                continue;
            }
            if line.starts_with(' ') || line.starts_with('\t') {
                if let Some(f) = p.fields.last_mut() {
                    f.lines.push(line.trim());
                }
                continue;
            }
            if let Some((k, v)) = line.split_once(':') {
                p.fields.push(Field {
                    name: k.trim(),
                    value: v.trim(),
                    lines: Vec::new(),
                });
            }
        }
        Some(p)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_fields_and_continuations() {
        let text = "Origin: Debian\nSHA256:\n abc 12 main/Packages\n\tdef 3 x\n\n\n# c\nTypes: deb\nuris: http://m/\n";
        let ps: Vec<_> = paragraphs(text).collect();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].get("origin"), Some("Debian"));
        assert_eq!(
            ps[0].field("SHA256").unwrap().lines,
            ["abc 12 main/Packages", "def 3 x"]
        );
        assert_eq!(ps[1].get("URIs"), Some("http://m/"));
        assert_eq!(Paragraph::parse(text).fields.len(), 2);
    }
}
