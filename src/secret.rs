//! A string that must never be shown.
//!
//! Access keys' secrets, client secrets and API keys travel through pushpool as [`Secret`]:
//! it has no `Display`, its `Debug` is redacted and it is not `Serialize`, so the compiler
//! keeps it out of plan files, rendered output and error texts. Only [`Secret::expose`]
//! hands out the value, at the one place that sends it to its destination.

use std::fmt;

/// A secret value; see the module docs for why it cannot be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value that must not be shown.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the request or file that needs it. Never format it.
    pub fn expose(&self) -> &str {
        &self.0
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
    }
}
