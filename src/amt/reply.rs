//! Parsing of WS-Management replies: faults, enumeration contexts, pulled items, instances and
//! method outputs. Names are matched by local name, as AMT's namespace prefixes vary.

use super::AmtError;

/// One CIM/AMT instance as a reply carries it: its class (element local name) and its
/// properties in document order (a repeated property appears once per value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Class name, e.g. `CIM_AssociatedPowerManagementService`.
    pub class: String,
    /// `(property, text)` pairs; references and other structured values have empty text.
    pub properties: Vec<(String, String)>,
}

impl Instance {
    /// The first value of a property.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a (repeated) property.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.properties
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

fn malformed(what: impl Into<String>) -> AmtError {
    AmtError::Malformed(what.into())
}

fn parse(xml: &str) -> Result<roxmltree::Document<'_>, AmtError> {
    roxmltree::Document::parse(xml).map_err(|e| malformed(format!("not XML: {e}")))
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn body<'a, 'i>(doc: &'a roxmltree::Document<'i>) -> Result<roxmltree::Node<'a, 'i>, AmtError> {
    let env = doc.root_element();
    if env.tag_name().name() != "Envelope" {
        return Err(malformed(format!(
            "the root element is <{}>, not a SOAP Envelope",
            env.tag_name().name()
        )));
    }
    child(env, "Body").ok_or_else(|| malformed("the envelope has no Body"))
}

fn text(n: roxmltree::Node<'_, '_>) -> String {
    n.text().unwrap_or("").trim().to_string()
}

/// Fails with [`AmtError::Fault`] when the reply is a SOAP fault; otherwise returns nothing.
pub fn check_fault(xml: &str) -> Result<(), AmtError> {
    let doc = parse(xml)?;
    let body = body(&doc)?;
    if let Some(f) = child(body, "Fault") {
        let code = f
            .descendants()
            .filter(|n| n.tag_name().name() == "Value")
            .map(text)
            .next_back()
            .unwrap_or_default();
        let reason = f
            .descendants()
            .find(|n| n.tag_name().name() == "Text")
            .map(text)
            .unwrap_or_default();
        return Err(AmtError::Fault { code, reason });
    }
    Ok(())
}

fn instance(n: roxmltree::Node<'_, '_>) -> Instance {
    Instance {
        class: n.tag_name().name().to_string(),
        properties: n
            .children()
            .filter(|c| c.is_element())
            .map(|c| {
                let simple = !c.children().any(|g| g.is_element());
                (
                    c.tag_name().name().to_string(),
                    if simple { text(c) } else { String::new() },
                )
            })
            .collect(),
    }
}

/// The `EnumerationContext` of an `EnumerateResponse`.
pub fn enumeration_context(xml: &str) -> Result<String, AmtError> {
    check_fault(xml)?;
    let doc = parse(xml)?;
    let r = child(body(&doc)?, "EnumerateResponse")
        .ok_or_else(|| malformed("no EnumerateResponse in the reply to Enumerate"))?;
    child(r, "EnumerationContext")
        .map(text)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| malformed("EnumerateResponse without an EnumerationContext"))
}

/// The items of a `PullResponse` and whether it ended the sequence.
pub fn pull_items(xml: &str) -> Result<(Vec<Instance>, bool), AmtError> {
    check_fault(xml)?;
    let doc = parse(xml)?;
    let r = child(body(&doc)?, "PullResponse")
        .ok_or_else(|| malformed("no PullResponse in the reply to Pull"))?;
    let items = child(r, "Items")
        .map(|i| {
            i.children()
                .filter(|c| c.is_element())
                .map(instance)
                .collect()
        })
        .unwrap_or_default();
    Ok((items, child(r, "EndOfSequence").is_some()))
}

/// The instance a `Get` returned, which must be of `class`.
pub fn get_instance(xml: &str, class: &str) -> Result<Instance, AmtError> {
    check_fault(xml)?;
    let doc = parse(xml)?;
    let n = child(body(&doc)?, class)
        .ok_or_else(|| malformed(format!("no {class} in the reply to Get")))?;
    Ok(instance(n))
}

/// The `ReturnValue` of a method's `METHOD_OUTPUT`.
pub fn return_value(xml: &str, method: &str) -> Result<u32, AmtError> {
    check_fault(xml)?;
    let doc = parse(xml)?;
    let out = format!("{method}_OUTPUT");
    let o = child(body(&doc)?, &out)
        .ok_or_else(|| malformed(format!("no {out} in the reply to {method}")))?;
    let v = child(o, "ReturnValue")
        .map(text)
        .ok_or_else(|| malformed(format!("{out} without a ReturnValue")))?;
    v.parse()
        .map_err(|_| malformed(format!("{out}: ReturnValue `{v}` is not a number")))
}
