//! Where the Prefect API is and which key to use, resolved as Prefect resolves them:
//! environment first (`PREFECT_API_URL`, `PREFECT_API_KEY`, `PREFECT_CLOUD_API_URL`), then the
//! active profile of `$PREFECT_HOME/profiles.toml` (`PREFECT_PROFILE` picks it, else the file's
//! `active`). Whether the API is Prefect Cloud's is decided here, once, as Prefect decides it.

use std::path::{Path, PathBuf};

use toml_edit::DocumentMut;

use crate::error::{Error, Result, position};
use crate::header::check_header_value;
use crate::redact::redact_urls;
use crate::secret::Secret;

/// Prefect's profile file and the profile in use.
#[derive(Debug, Clone)]
pub struct ProfileFile {
    /// `$PREFECT_PROFILES_PATH`, else `$PREFECT_HOME/profiles.toml`, else `~/.prefect/profiles.toml`.
    pub path: PathBuf,
    /// The active profile's name.
    pub active: String,
}

/// Prefect Cloud's API when `PREFECT_CLOUD_API_URL` does not say otherwise (Prefect's
/// `CloudSettings.api_url` default).
pub const DEFAULT_CLOUD_API_URL: &str = "https://api.prefect.cloud/api";

/// The Prefect API to talk to.
#[derive(Debug, Clone)]
pub struct PrefectSettings {
    /// The API URL, e.g. `http://127.0.0.1:4200/api` or a Prefect Cloud workspace URL.
    pub api_url: String,
    /// The API key, for Prefect Cloud or a server behind authentication.
    pub api_key: Option<Secret>,
    /// The profile file, for the Docker build namespace.
    pub profile: ProfileFile,
    /// The Prefect Cloud workspace the API URL names; None for a self-hosted server.
    pub cloud: Option<CloudWorkspace>,
}

/// A Prefect Cloud workspace, as its API URL names it: `<cloud>/accounts/<id>/workspaces/<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudWorkspace {
    /// The account's id.
    pub account: String,
    /// The workspace's id.
    pub workspace: String,
}

impl PrefectSettings {
    /// True for a Prefect Cloud workspace, where push pools run.
    pub fn is_cloud(&self) -> bool {
        self.cloud.is_some()
    }
}

/// An environment to read variables from; the process environment outside tests.
pub trait Env {
    /// The variable's value, if set and not empty.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// A fixed set of variables, for tests of what reads an [`Env`].
#[cfg(test)]
pub(crate) struct MapEnv(pub std::collections::HashMap<&'static str, String>);

#[cfg(test)]
impl Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// The user's home directory as Python's `os.path.expanduser("~")` finds it, for the tools
/// whose config files pushpool reads where their Python clients do (Modal, dask): `HOME` on
/// Unix; `USERPROFILE`, else `HOMEDRIVE` + `HOMEPATH` on Windows (Python ignores `HOME` there).
/// Python's last resort on Unix, the password database, is left out: `None` when `HOME` is unset.
pub fn home_dir(env: &dyn Env) -> Option<PathBuf> {
    home_dir_on(env, cfg!(windows))
}

fn home_dir_on(env: &dyn Env, windows: bool) -> Option<PathBuf> {
    if !windows {
        return env.var("HOME").map(PathBuf::from);
    }
    let drive_path = || Some(format!("{}{}", env.var("HOMEDRIVE").unwrap_or_default(), env.var("HOMEPATH")?));
    env.var("USERPROFILE").or_else(drive_path).map(PathBuf::from)
}

/// Resolves the settings from `env` and the profile file.
pub fn discover(env: &dyn Env) -> Result<PrefectSettings> {
    let home = env.var("PREFECT_HOME").map(PathBuf::from).or_else(|| home_dir(env).map(|h| h.join(".prefect"))).unwrap_or_else(|| PathBuf::from(".prefect"));
    let path = env.var("PREFECT_PROFILES_PATH").map(PathBuf::from).unwrap_or_else(|| home.join("profiles.toml"));
    let document = read_profiles(&path)?;
    let active =
        env.var("PREFECT_PROFILE").or_else(|| document.as_ref().and_then(|d| d.get("active")?.as_str().map(str::to_owned))).unwrap_or_else(|| "default".to_owned());
    let from_profile = |key: &str| -> Option<String> {
        let profiles = document.as_ref()?.get("profiles")?;
        Some(profiles.get(&active)?.get(key)?.as_str()?.to_owned())
    };
    let api_url = env.var("PREFECT_API_URL").or_else(|| from_profile("PREFECT_API_URL")).ok_or_else(|| {
        Error::usage("Prefect API URL", format!("neither PREFECT_API_URL nor profile '{active}' in {} sets it", path.display()))
            .fix("run `prefect cloud login`, or set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api for a local server)")
    })?;
    // Where each setting came from, for an error that tells which one to fix.
    let source = |key: &str| match env.var(key) {
        Some(_) => key.to_owned(),
        None => format!("{key} of profile '{active}' in {}", path.display()),
    };
    check_api_url(&source("PREFECT_API_URL"), &api_url)?;
    let api_key = env.var("PREFECT_API_KEY").or_else(|| from_profile("PREFECT_API_KEY"));
    if let Some(key) = &api_key {
        check_header_value(&source("PREFECT_API_KEY"), key)?;
    }
    // An empty setting is no Cloud at all, as in Prefect (`cloud_api_url and url.startswith(…)`).
    let cloud_api_url = env.var("PREFECT_CLOUD_API_URL").or_else(|| from_profile("PREFECT_CLOUD_API_URL"));
    let cloud_api_url = cloud_api_url.as_deref().unwrap_or(DEFAULT_CLOUD_API_URL).trim_end_matches('/');
    let api_url = api_url.trim_end_matches('/').to_owned();
    let cloud = cloud_workspace(&source("PREFECT_API_URL"), &api_url, cloud_api_url)?;
    if cloud.is_some() && api_key.is_none() {
        return Err(Error::usage("PREFECT_API_KEY", format!("not set, and Prefect Cloud ({}) needs an API key", redact_urls(&api_url)))
            .fix("run `prefect cloud login`, or set PREFECT_API_KEY to a user's key (pnu_...) or a service account's (pnb_...)"));
    }
    Ok(PrefectSettings { api_url, api_key: api_key.map(Secret::new), profile: ProfileFile { path, active }, cloud })
}

/// The Prefect Cloud workspace `api_url` names, decided as Prefect decides "this is Prefect
/// Cloud": the API URL starts with `PREFECT_CLOUD_API_URL` (`cloud_api_url`). A Cloud URL that
/// names no workspace (an account's URL, Cloud's own) is refused: work pools live in a
/// workspace, and every call would fail with a less helpful answer.
fn cloud_workspace(source: &str, api_url: &str, cloud_api_url: &str) -> Result<Option<CloudWorkspace>> {
    let Some(rest) = api_url.strip_prefix(cloud_api_url).filter(|_| !cloud_api_url.is_empty()) else { return Ok(None) };
    let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    // Prefect's own pattern: `accounts/(.{36})/workspaces/(.{36})`.
    let id = |part: &str| part.len() == 36 && part.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    match parts.as_slice() {
        ["accounts", account, "workspaces", workspace] if id(account) && id(workspace) => {
            Ok(Some(CloudWorkspace { account: (*account).to_owned(), workspace: (*workspace).to_owned() }))
        }
        _ => {
            let shown = redact_urls(api_url);
            let cause = match parts.as_slice() {
                ["accounts", _] | ["accounts", _, "workspaces"] => {
                    format!("'{shown}' is a Prefect Cloud account's URL without a workspace; work pools live in a workspace")
                }
                _ => format!("'{shown}' is under Prefect Cloud's API ({cloud_api_url}) but names no workspace (…/accounts/<account id>/workspaces/<workspace id>)"),
            };
            Err(Error::usage(source, cause).fix(
                "run `prefect cloud workspace set` to choose a workspace (it sets PREFECT_API_URL to …/accounts/<account id>/workspaces/<workspace id>), or set PREFECT_API_URL to that URL",
            ))
        }
    }
}

/// Checks that the Prefect API URL from `source` is an http(s) URL with a host, so that a
/// typo is named as such rather than reported as a server that cannot be reached. The error
/// shows the URL with its credentials redacted.
fn check_api_url(source: &str, url: &str) -> Result<()> {
    let refused =
        |cause: String| Error::usage(source, cause).fix("set it to the API's URL, e.g. http://127.0.0.1:4200/api for a local server, or run `prefect cloud login`");
    if url.chars().any(char::is_control) {
        return Err(refused("contains a line break or another control character; trim it".to_owned()));
    }
    let shown = redact_urls(url);
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        Ok(_) => Err(refused(format!("'{shown}' is not an http(s) URL with a host"))),
        Err(e) => Err(refused(format!("'{shown}' is not a URL: {e}"))),
    }
}

/// Reads and parses the profile file; a missing file is no profile, a malformed one an error
/// that leaves it untouched.
pub fn read_profiles(path: &Path) -> Result<Option<DocumentMut>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::unreadable(format!("Prefect profiles {}", path.display()), &e)),
    };
    text.parse::<DocumentMut>().map(Some).map_err(|e| {
        let at = e.span().map(|span| position(&text, span.start)).unwrap_or_default();
        Error::usage(format!("Prefect profiles {}{at}", path.display()), format!("not valid TOML: {}", e.message().trim_end()))
            .fix("fix the file by hand (pushpool left it untouched), or point PREFECT_HOME elsewhere")
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn home_with(profiles: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("profiles.toml"), profiles).unwrap();
        dir
    }

    #[test]
    fn environment_wins_over_the_active_profile() {
        let dir = home_with("active = \"dev\"\n[profiles.dev]\nPREFECT_API_URL = \"http://profile/api\"\nPREFECT_API_KEY = \"pk\"\n");
        let home = dir.path().display().to_string();
        let from_profile = discover(&MapEnv(HashMap::from([("PREFECT_HOME", home.clone())]))).unwrap();
        assert_eq!(from_profile.api_url, "http://profile/api");
        assert_eq!(from_profile.api_key.unwrap().expose(), "pk");
        assert_eq!(from_profile.profile.active, "dev");

        let env = MapEnv(HashMap::from([("PREFECT_HOME", home), ("PREFECT_API_URL", "http://env/api/".into())]));
        assert_eq!(discover(&env).unwrap().api_url, "http://env/api");
    }

    #[test]
    fn prefect_profile_variable_selects_the_profile() {
        let dir = home_with("active = \"a\"\n[profiles.a]\nPREFECT_API_URL = \"http://a/api\"\n[profiles.b]\nPREFECT_API_URL = \"http://b/api\"\n");
        let env = MapEnv(HashMap::from([("PREFECT_HOME", dir.path().display().to_string()), ("PREFECT_PROFILE", "b".into())]));
        assert_eq!(discover(&env).unwrap().api_url, "http://b/api");
    }

    #[test]
    fn home_is_home_on_unix_and_the_user_profile_on_windows() {
        let env = MapEnv(HashMap::from([("HOME", "/home/u".into()), ("USERPROFILE", r"C:\Users\u".into())]));
        assert_eq!(home_dir_on(&env, false), Some(PathBuf::from("/home/u")));
        assert_eq!(home_dir_on(&env, true), Some(PathBuf::from(r"C:\Users\u")));
        let env = MapEnv(HashMap::from([("HOME", "/home/u".into()), ("HOMEDRIVE", "D:".into()), ("HOMEPATH", r"\u".into())]));
        assert_eq!(home_dir_on(&env, true), Some(PathBuf::from(r"D:\u")));
        assert_eq!(home_dir_on(&MapEnv(HashMap::new()), false), None);
    }

    #[test]
    fn a_key_that_cannot_be_a_header_and_a_url_that_is_not_one_are_named() {
        let env = |vars: &[(&'static str, &str)]| MapEnv(vars.iter().map(|(k, v)| (*k, v.to_string())).collect());
        let error = discover(&env(&[("PREFECT_API_URL", "http://127.0.0.1:4200/api"), ("PREFECT_API_KEY", "pnu_key\n")])).unwrap_err();
        assert_eq!(error.what, "PREFECT_API_KEY");
        assert!(error.cause.contains("line break") && !error.cause.contains("pnu_key"), "{error}");
        for url in ["127.0.0.1:4200/api", "localhost:4200/api", "ftp://host/api", "not a url"] {
            let error = discover(&env(&[("PREFECT_API_URL", url)])).unwrap_err();
            assert_eq!(error.what, "PREFECT_API_URL", "{url}");
            assert!(error.fix.unwrap().contains("/api"), "{url}");
        }
        let error = discover(&env(&[("PREFECT_API_URL", "ftp://admin:hunter2@host/api")])).unwrap_err();
        assert!(error.cause.contains("admin:***@host") && !error.cause.contains("hunter2"), "{error}");
        let dir = home_with("active = \"dev\"\n[profiles.dev]\nPREFECT_API_URL = \"http://profile/api\"\nPREFECT_API_KEY = \"pk\\r\"\n");
        let error = discover(&env(&[("PREFECT_HOME", &dir.path().display().to_string())])).unwrap_err();
        assert!(error.what.starts_with("PREFECT_API_KEY of profile 'dev' in "), "{error}");
    }

    const ACCOUNT: &str = "0f3a9d2e-1b4c-4d5e-8f60-718293a4b5c6";
    const WORKSPACE: &str = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f2a3b4c5d";

    #[test]
    fn prefect_cloud_is_an_api_url_under_the_cloud_api_url_from_the_environment_or_the_profile() {
        let env = |vars: &[(&'static str, &str)]| MapEnv(vars.iter().map(|(k, v)| (*k, v.to_string())).collect());
        let workspace = CloudWorkspace { account: ACCOUNT.into(), workspace: WORKSPACE.into() };
        let cloud = format!("https://api.prefect.cloud/api/accounts/{ACCOUNT}/workspaces/{WORKSPACE}");
        let settings = discover(&env(&[("PREFECT_API_URL", &cloud), ("PREFECT_API_KEY", "pnu_k")])).unwrap();
        assert_eq!(settings.cloud.as_ref(), Some(&workspace), "the default PREFECT_CLOUD_API_URL");

        let front = format!("http://127.0.0.1:15500/api/accounts/{ACCOUNT}/workspaces/{WORKSPACE}/");
        let settings = discover(&env(&[("PREFECT_API_URL", &front), ("PREFECT_API_KEY", "pnb_k"), ("PREFECT_CLOUD_API_URL", "http://127.0.0.1:15500/api/")])).unwrap();
        assert_eq!(settings.cloud.as_ref(), Some(&workspace), "a Cloud at another address, as PREFECT_CLOUD_API_URL says");
        assert!(!discover(&env(&[("PREFECT_API_URL", &front), ("PREFECT_API_KEY", "k")])).unwrap().is_cloud(), "not under the default");

        let dir = home_with(&format!(
            "active = \"c\"\n[profiles.c]\nPREFECT_API_URL = \"{front}\"\nPREFECT_API_KEY = \"pnu_k\"\nPREFECT_CLOUD_API_URL = \"http://127.0.0.1:15500/api\"\n"
        ));
        assert!(discover(&env(&[("PREFECT_HOME", &dir.path().display().to_string())])).unwrap().is_cloud(), "the profile's PREFECT_CLOUD_API_URL");

        for url in ["http://127.0.0.1:4200/api", "https://prefect.example.com/api/accounts/a/workspaces/w"] {
            assert!(!discover(&env(&[("PREFECT_API_URL", url)])).unwrap().is_cloud(), "{url}");
        }
        let dir = home_with(&format!("active = \"c\"\n[profiles.c]\nPREFECT_API_URL = \"{front}\"\nPREFECT_CLOUD_API_URL = \"\"\n"));
        assert!(!discover(&env(&[("PREFECT_HOME", &dir.path().display().to_string())])).unwrap().is_cloud(), "an empty setting is no Cloud");
    }

    #[test]
    fn a_cloud_url_without_a_workspace_and_cloud_without_a_key_are_refused_before_any_call() {
        let env = |vars: &[(&'static str, &str)]| MapEnv(vars.iter().map(|(k, v)| (*k, v.to_string())).collect());
        for url in [
            format!("https://api.prefect.cloud/api/accounts/{ACCOUNT}"),
            format!("https://api.prefect.cloud/api/accounts/{ACCOUNT}/workspaces"),
            "https://api.prefect.cloud/api".to_owned(),
            format!("https://api.prefect.cloud/api/accounts/{ACCOUNT}/workspaces/{WORKSPACE}/work_pools"),
        ] {
            let error = discover(&env(&[("PREFECT_API_URL", &url), ("PREFECT_API_KEY", "pnu_k")])).unwrap_err();
            assert_eq!(error.what, "PREFECT_API_URL", "{url}");
            assert!(error.cause.contains(&url) && error.cause.contains("workspace"), "{error}");
            assert!(error.fix.as_deref().unwrap().contains("prefect cloud workspace set"), "{error}");
        }
        let url = format!("https://api.prefect.cloud/api/accounts/{ACCOUNT}/workspaces/{WORKSPACE}");
        let error = discover(&env(&[("PREFECT_API_URL", &url)])).unwrap_err();
        assert_eq!(error.what, "PREFECT_API_KEY");
        assert!(error.fix.as_deref().unwrap().contains("prefect cloud login"), "{error}");
    }

    #[test]
    fn missing_url_and_malformed_file_are_clear_errors() {
        let dir = home_with("active = \"default\"\n[profiles.default]\n");
        let env = MapEnv(HashMap::from([("PREFECT_HOME", dir.path().display().to_string())]));
        let error = discover(&env).unwrap_err();
        assert!(error.cause.contains("PREFECT_API_URL"), "{error}");
        assert!(error.fix.is_some());

        let dir = home_with("active = \n[profiles");
        let env = MapEnv(HashMap::from([("PREFECT_HOME", dir.path().display().to_string())]));
        let error = discover(&env).unwrap_err();
        assert!(error.cause.contains("not valid TOML"), "{error}");
        assert!(error.what.ends_with("profiles.toml, line 2, column 10"), "{error}");
    }
}
