//! Credentials in URLs (`https://user:password@host/…`), kept out of everything pushpool
//! prints or saves.
//!
//! A self-hosted Prefect server behind basic authentication is often configured with the
//! password in `PREFECT_API_URL`'s user-info. The URL itself must keep it (requests need it),
//! but the plan header, plan files, notes and errors (reqwest's included, which quote the URL
//! they failed on) show `https://user:***@host/…` instead.

use std::borrow::Cow;

/// What replaces a URL's password, or its user name when there is no password (a token
/// passed as the user name, `https://TOKEN@host`).
pub const REDACTED: &str = "***";

/// `text` with the user-info of every URL in it redacted: `scheme://user:password@host` becomes
/// `scheme://user:***@host`, `scheme://token@host` becomes `scheme://***@host`. Text without
/// user-info is returned as it is.
pub fn redact_urls(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The authority ends at the path, query or fragment, or where the URL itself ends.
        let end = after.find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '>' | ',')).unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(user_end) => {
                let user_info = &authority[..user_end];
                match user_info.split_once(':') {
                    Some((user, _)) => out.push_str(&format!("{user}:{REDACTED}")),
                    None => out.push_str(REDACTED),
                }
                out.push_str(&authority[user_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_tokens_in_urls_are_redacted_wherever_they_are_in_the_text() {
        let cases = [
            ("https://admin:s3cret@prefect.example.com/api", "https://admin:***@prefect.example.com/api"),
            ("http://tok3n@127.0.0.1:4200/api", "http://***@127.0.0.1:4200/api"),
            ("error sending request for url (http://u:p%40ss@h:1/api/x): refused", "error sending request for url (http://u:***@h:1/api/x): refused"),
            ("a http://a:b@x and https://c:d@y?q=1", "a http://a:***@x and https://c:***@y?q=1"),
            ("https://prefect.example.com/api/work_pools/a@b", "https://prefect.example.com/api/work_pools/a@b"),
            ("no url here: a@b", "no url here: a@b"),
        ];
        for (text, shown) in cases {
            assert_eq!(redact_urls(text), shown, "{text}");
        }
        assert!(matches!(redact_urls("plain text"), Cow::Borrowed(_)), "text without a URL is not copied");
    }
}
