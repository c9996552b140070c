//! References from data to node attributes: `"@node.attr"` inside job variables and block
//! data, the blueprint's only form of substitution besides the pool's name.
//!
//! A string value `"@vpc.id"` stands for attribute `id` of node `vpc` (or of a context such
//! as `aws`); `"@aws.endpoint_url?"` is optional: the key holding it is left out when the
//! attribute is absent. Anything else is literal JSON.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use std::collections::BTreeMap;

use super::attrs::{Attr, Attrs};
use crate::error::{Error, Result};

/// A parsed `@node.attr` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference<'a> {
    /// The node or context named.
    pub node: &'a str,
    /// The attribute.
    pub attr: &'a str,
    /// Whether an absent attribute drops the key instead of being an error.
    pub optional: bool,
}

impl<'a> Reference<'a> {
    /// Parses `value` when it is a reference.
    pub fn parse(value: &'a Value) -> Option<Self> {
        let text = value.as_str()?.strip_prefix('@')?;
        let (text, optional) = match text.strip_suffix('?') {
            Some(text) => (text, true),
            None => (text, false),
        };
        let (node, attr) = text.split_once('.')?;
        Some(Self { node, attr, optional })
    }
}

/// The nodes and contexts a template refers to.
pub fn referenced_nodes(template: &Value) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    visit(template, &mut |r| {
        found.insert(r.node.to_owned());
    });
    found
}

fn visit<'a>(value: &'a Value, f: &mut impl FnMut(Reference<'a>)) {
    if let Some(reference) = Reference::parse(value) {
        return f(reference);
    }
    match value {
        Value::Array(items) => items.iter().for_each(|v| visit(v, f)),
        Value::Object(map) => map.values().for_each(|v| visit(v, f)),
        _ => {}
    }
}

/// True when `template` references an attribute of `known` that is a secret: a value known at
/// plan time (a local token) that must be compared without being shown.
pub fn names_secret(template: &Value, known: &BTreeMap<String, Attrs>) -> bool {
    let mut found = false;
    visit(template, &mut |r| found |= matches!(known.get(r.node).and_then(|a| a.get(r.attr)), Some(Attr::Secret(_))));
    found
}

/// The optional references of `template` whose attribute `known` lacks, as `node.attr`: left
/// out now, but a node about to be created or updated may have them after apply.
pub fn absent_optional(template: &Value, known: &BTreeMap<String, Attrs>) -> Vec<(String, String)> {
    let mut absent = Vec::new();
    visit(template, &mut |r| {
        if r.optional && known.get(r.node).and_then(|a| a.get(r.attr)).is_none() {
            absent.push((r.node.to_owned(), r.attr.to_owned()));
        }
    });
    absent
}

/// What a template resolves to when some attributes are not known yet.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    /// Every reference was known.
    Known(Value),
    /// Some required reference is known only after apply; the listed ones.
    Unknown(Vec<String>),
}

/// How secrets referenced by a template are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// A secret reference is an error: the result will be shown or saved.
    Refuse,
    /// Secrets are put in: the result goes straight into a request body.
    Expose,
}

/// Resolves every reference in `template` against `known` (node or context → attributes).
pub fn resolve(template: &Value, known: &BTreeMap<String, Attrs>, secrets: Secrets) -> Result<Resolved> {
    let lookup = |node: &str, attr: &str| known.get(node)?.get(attr);
    let mut unknown = Vec::new();
    let value = resolve_value(template, &lookup, secrets, &mut unknown)?;
    Ok(match value {
        _ if !unknown.is_empty() => Resolved::Unknown(unknown),
        Some(value) => Resolved::Known(value),
        None => Resolved::Known(Value::Null),
    })
}

fn resolve_value<'l>(value: &Value, lookup: &dyn Fn(&str, &str) -> Option<&'l Attr>, secrets: Secrets, unknown: &mut Vec<String>) -> Result<Option<Value>> {
    if let Some(r) = Reference::parse(value) {
        return match (lookup(r.node, r.attr), secrets) {
            (Some(Attr::Value(v) | Attr::Hint(v)), _) => Ok(Some(v.clone())),
            (Some(Attr::Secret(s)), Secrets::Expose) => Ok(Some(s.expose_value())),
            (Some(Attr::Secret(_)), Secrets::Refuse) => {
                Err(Error::usage(format!("reference @{}.{}", r.node, r.attr), "names a secret where the value would be shown or saved"))
            }
            (None, _) if r.optional => Ok(None),
            (None, _) => {
                unknown.push(format!("{}.{}", r.node, r.attr));
                Ok(Some(Value::Null))
            }
        };
    }
    Ok(Some(match value {
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve_value(v, lookup, secrets, unknown)).filter_map(Result::transpose).collect::<Result<_>>()?),
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, v) in map {
                if let Some(v) = resolve_value(v, lookup, secrets, unknown)? {
                    out.insert(key.clone(), v);
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::secret::Secret;

    fn known() -> BTreeMap<String, Attrs> {
        let mut key = Attrs::new();
        key.set_secret("secret", Secret::new("s3cr3t"));
        BTreeMap::from([("vpc".to_string(), Attrs::new().with("id", "vpc-1")), ("k".to_string(), key)])
    }

    #[test]
    fn resolves_nested_references_and_drops_absent_optional_keys() {
        let template = json!({"a": {"vpc": "@vpc.id", "list": ["@vpc.id", "x"]}, "opt": "@aws.endpoint?"});
        let resolved = resolve(&template, &known(), Secrets::Refuse).unwrap();
        assert_eq!(resolved, Resolved::Known(json!({"a": {"vpc": "vpc-1", "list": ["vpc-1", "x"]}})));
    }

    #[test]
    fn required_missing_reference_is_unknown_not_null() {
        let resolved = resolve(&json!(["@subnets.ids"]), &known(), Secrets::Refuse).unwrap();
        assert_eq!(resolved, Resolved::Unknown(vec!["subnets.ids".into()]));
    }

    #[test]
    fn secrets_are_refused_unless_exposed_on_purpose() {
        assert!(resolve(&json!("@k.secret"), &known(), Secrets::Refuse).is_err());
        let exposed = resolve(&json!("@k.secret"), &known(), Secrets::Expose).unwrap();
        assert_eq!(exposed, Resolved::Known(json!("s3cr3t")));
    }

    #[test]
    fn tells_whether_a_template_names_a_known_secret() {
        assert!(names_secret(&json!({"a": ["@k.secret"]}), &known()));
        assert!(!names_secret(&json!({"a": "@vpc.id", "b": "@k.other"}), &known()));
    }

    #[test]
    fn lists_referenced_nodes() {
        let nodes = referenced_nodes(&json!({"a": "@vpc.id", "b": ["@sg.id"], "c": "@literal"}));
        assert_eq!(nodes.into_iter().collect::<Vec<_>>(), vec!["sg", "vpc"]);
    }
}
