//! A string that must never be shown.
//!
//! Access keys' secrets, client secrets and API keys travel through pushpool as [`Secret`]:
//! it has no `Display`, its `Debug` is redacted and it is not `Serialize`, so the compiler
//! keeps it out of plan files, rendered output and error texts. Only [`Secret::expose`]
//! hands out the value, at the one place that sends it to its destination.

use std::fmt;

/// A secret value; see the module docs for why it cannot be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    text: String,
    /// The text is a JSON document (a key file), sent as the document it is.
    json: bool,
}

impl Secret {
    /// Wraps a value that must not be shown.
    pub fn new(value: impl Into<String>) -> Self {
        Self { text: value.into(), json: false }
    }

    /// Wraps a JSON document that must not be shown (a GCP key file): a block holds it as an
    /// object, whose fields Prefect hides one by one.
    pub fn json(document: &serde_json::Value) -> Self {
        Self { text: document.to_string(), json: true }
    }

    /// The value itself, for the request or file that needs it. Never format it.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The value as it goes into a JSON request body: the document of a JSON secret, else a
    /// string. Never format it.
    pub fn expose_value(&self) -> serde_json::Value {
        match self.json {
            true => serde_json::from_str(&self.text).unwrap_or(serde_json::Value::Null),
            false => serde_json::Value::from(self.text.as_str()),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_does_not_show_the_value() {
        let secret = Secret::new("wJalrXUtnFEMI");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(secret.expose(), "wJalrXUtnFEMI");
        assert_eq!(secret.expose_value(), serde_json::json!("wJalrXUtnFEMI"));
    }

    #[test]
    fn a_json_secret_goes_out_as_its_document() {
        let key = serde_json::json!({"private_key_id": "k1", "private_key": "-----BEGIN PRIVATE KEY-----"});
        let secret = Secret::json(&key);
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(secret.expose_value(), key);
    }
}
