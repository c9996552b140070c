//! Values from the environment that travel in HTTP headers (access keys, session tokens, API
//! keys), checked before any call.
//!
//! A secret pasted with its trailing newline (common with CI secrets) cannot be a header: the
//! AWS SDK's signer panics on it and reqwest's builder fails with a message about the
//! connection. Checked here first, the error names the variable, never its value, and says to
//! trim it.

use crate::error::{Error, Result};
use crate::prefect::settings::Env;

/// The AWS credential variables the SDK puts into signed headers.
pub const AWS_CREDENTIAL_VARIABLES: &[&str] = &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"];

/// Checks that `value`, read from `source` (a variable's name, or a key of a file), can be an
/// HTTP header value: no line break and no other control character. The error names `source`
/// and the character's kind, never the value.
pub fn check_header_value(source: &str, value: &str) -> Result<()> {
    let Some(bad) = value.chars().find(|c| c.is_control()) else { return Ok(()) };
    let kind = match bad {
        '\n' | '\r' => "a line break".to_owned(),
        '\t' => "a tab".to_owned(),
        other => format!("a control character (U+{:04X})", u32::from(other)),
    };
    Err(Error::usage(source, format!("contains {kind}, which cannot be sent in an HTTP header; nothing was sent"))
        .fix(format!("set {source} again without it (a secret pasted with a trailing newline: trim it where it is defined)")))
}

/// Checks each of `variables` that `env` sets with [`check_header_value`].
pub fn check_header_variables(env: &dyn Env, variables: &[&str]) -> Result<()> {
    variables.iter().filter_map(|name| Some((*name, env.var(name)?))).try_for_each(|(name, value)| check_header_value(name, &value))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::prefect::settings::MapEnv;

    #[test]
    fn line_breaks_and_control_characters_are_named_without_the_value() {
        let env = MapEnv(HashMap::from([("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE\n".to_owned()), ("AWS_SESSION_TOKEN", "tok\u{7}en".to_owned())]));
        let error = check_header_variables(&env, &["AWS_ACCESS_KEY_ID"]).unwrap_err();
        assert_eq!(error.what, "AWS_ACCESS_KEY_ID");
        assert!(error.cause.starts_with("contains a line break"), "{error}");
        assert!(!error.to_string().contains("AKIAEXAMPLE"), "{error}");
        assert!(error.fix.unwrap().contains("trim"));
        let error = check_header_variables(&env, &["AWS_SESSION_TOKEN"]).unwrap_err();
        assert!(error.cause.contains("U+0007"), "{error}");
        assert!(check_header_variables(&env, &["AWS_SECRET_ACCESS_KEY"]).is_ok(), "unset variables pass");
        assert!(check_header_value("PREFECT_API_KEY", "pnu_abc123").is_ok());
    }
}
