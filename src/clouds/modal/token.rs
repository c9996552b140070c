//! The Modal token of this machine, found as the Modal client finds it, without running Python.
//!
//! Every rule below is the client's (modal-client `py/modal/config.py`, and `_Client.from_env`
//! in `py/modal/client.py`, which Prefect's own Modal provisioner relies on):
//!
//! 1. The config file is `MODAL_CONFIG_PATH`, else `~/.modal.toml` (the home directory as
//!    [`home_dir`] finds it). A missing file is an empty config; an unreadable or malformed one
//!    is an error, and so is one whose top level holds anything but a table per profile.
//! 2. The profile is `MODAL_PROFILE`, else the first table with `active = true`, else `default`.
//!    More than one active table is an error; so is a file of several profiles, none active,
//!    when the profile comes out as `default`.
//! 3. Each half on its own: `MODAL_TOKEN_ID` wins over the profile's `token_id`, and
//!    `MODAL_TOKEN_SECRET` over its `token_secret` (`Config.get` reads `MODAL_<KEY>` first).
//! 4. Both halves non-empty make the token. Otherwise, when `MODAL_PROFILE` names a profile the
//!    file lacks, that is the error; else the token is missing.
//!
//! Left out: `MODAL_IS_REMOTE=1` (inside a Modal container the client skips the file and ignores
//! tokens; pushpool does not run there). An empty variable counts as unset (the [`Env`]
//! contract), where the client would take the empty value and then find no token. The workspace
//! a token belongs to is not in the local config (the client asks Modal's API), so it is not
//! looked up: pushpool makes no call to Modal.

use std::fmt;
use std::path::{Path, PathBuf};

use toml_edit::DocumentMut;

use crate::error::{Error, Result};
use crate::prefect::settings::{Env, home_dir};
use crate::secret::Secret;

const ID_VARIABLE: &str = "MODAL_TOKEN_ID";
const SECRET_VARIABLE: &str = "MODAL_TOKEN_SECRET";
const PROFILE_VARIABLE: &str = "MODAL_PROFILE";
const ENVIRONMENT_VARIABLE: &str = "MODAL_ENVIRONMENT";

/// A Modal token and where it was found.
#[derive(Debug, Clone)]
pub struct ModalToken {
    /// The token id (`ak-…`): not a secret, so it can say which token a pool uses.
    pub token_id: String,
    /// The token secret (`as-…`).
    pub token_secret: Secret,
    /// Where the token came from, for the plan header and errors.
    pub source: TokenSource,
    /// The Modal environment the `modal` CLI works in: `MODAL_ENVIRONMENT`, else the profile's
    /// `environment`; None for the workspace's default one.
    pub environment: Option<String>,
}

/// Where a [`ModalToken`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// Both halves from `MODAL_TOKEN_ID` and `MODAL_TOKEN_SECRET`.
    Environment,
    /// A profile of the config file; `overridden` names the half the environment set instead.
    Profile { path: PathBuf, profile: String, overridden: Option<&'static str> },
}

impl TokenSource {
    /// The profile of the configuration file the token came from; none from the environment.
    pub fn profile(&self) -> Option<&str> {
        match self {
            Self::Environment => None,
            Self::Profile { profile, .. } => Some(profile),
        }
    }
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Environment => write!(f, "the environment ({ID_VARIABLE}, {SECRET_VARIABLE})"),
            Self::Profile { path, profile, overridden } => {
                write!(f, "profile '{profile}' of {}", path.display())?;
                overridden.map_or(Ok(()), |variable| write!(f, " and {variable}"))
            }
        }
    }
}

/// Finds the token by the client's rules (see the module docs).
pub fn discover(env: &dyn Env) -> Result<ModalToken> {
    let path = env.var("MODAL_CONFIG_PATH").map(PathBuf::from).or_else(|| Some(home_dir(env)?.join(".modal.toml")));
    let document = path.as_deref().map(read_config).transpose()?.flatten();
    let profile = select_profile(env, path.as_deref(), document.as_ref())?;
    let file = ProfileView { path: path.as_deref(), document: document.as_ref(), profile: &profile };
    let token_id = file.half(env, ID_VARIABLE, "token_id")?;
    let token_secret = file.half(env, SECRET_VARIABLE, "token_secret")?;
    let (Some((token_id, id_from_env)), Some((token_secret, secret_from_env))) = (token_id, token_secret) else {
        return Err(file.missing(env));
    };
    let environment = env.var(ENVIRONMENT_VARIABLE).or_else(|| file.table()?.get("environment")?.as_str().filter(|e| !e.is_empty()).map(str::to_owned));
    let source = match (&path, id_from_env, secret_from_env) {
        (Some(path), false, _) | (Some(path), _, false) => TokenSource::Profile {
            path: path.clone(),
            profile,
            overridden: [(id_from_env, ID_VARIABLE), (secret_from_env, SECRET_VARIABLE)].into_iter().find_map(|(env, v)| env.then_some(v)),
        },
        _ => TokenSource::Environment,
    };
    Ok(ModalToken { token_id, token_secret: Secret::new(token_secret), source, environment })
}

const FIX_FILE: &str = "fix the file by hand (the Modal client refuses it too), or point MODAL_CONFIG_PATH at another one";

/// Reads the config file: `None` when it does not exist; an error when it cannot be read, is
/// not TOML, or has a top-level key that is not a profile table.
fn read_config(path: &Path) -> Result<Option<DocumentMut>> {
    let what = || format!("Modal config {}", path.display());
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::usage(what(), e.to_string()).fix(FIX_FILE)),
    };
    let document = text.parse::<DocumentMut>().map_err(|e| {
        // The message names what was expected, never the text found: the line may hold a secret.
        let line = e.span().map_or(1, |span| text[..span.start].matches('\n').count() + 1);
        Error::usage(what(), format!("not valid TOML at line {line}: {}", e.message().trim())).fix(FIX_FILE)
    })?;
    if let Some((key, _)) = document.iter().find(|(_, item)| item.as_table_like().is_none()) {
        let cause = format!("`{key}` is not a table: the file must hold one table per profile");
        return Err(Error::usage(what(), cause).fix(FIX_FILE));
    }
    Ok(Some(document))
}

/// `MODAL_PROFILE`, else the first profile with `active = true`, else `default`, with the
/// client's checks on how many profiles are active.
fn select_profile(env: &dyn Env, path: Option<&Path>, document: Option<&DocumentMut>) -> Result<String> {
    let Some((path, document)) = path.zip(document) else {
        return Ok(env.var(PROFILE_VARIABLE).unwrap_or_else(|| "default".to_owned()));
    };
    let is_active = |item: &toml_edit::Item| item.as_table_like().and_then(|t| t.get("active")).and_then(toml_edit::Item::as_bool) == Some(true);
    let active: Vec<&str> = document.iter().filter(|(_, item)| is_active(item)).map(|(name, _)| name).collect();
    let what = || format!("Modal config {}", path.display());
    if let [first, second, ..] = active[..] {
        let cause = format!("profiles '{first}' and '{second}' are both active (`active = true`)");
        return Err(Error::usage(what(), cause).fix("run `modal profile activate <profile>`, or leave `active = true` in one profile only"));
    }
    let profile = env.var(PROFILE_VARIABLE).unwrap_or_else(|| active.first().unwrap_or(&"default").to_string());
    if document.len() > 1 && active.is_empty() && profile == "default" {
        let cause = format!("none of its {} profiles is active (`active = true`)", document.len());
        return Err(Error::usage(what(), cause).fix("run `modal profile activate <profile>`, or set MODAL_PROFILE"));
    }
    Ok(profile)
}

/// The selected profile of the config file, as far as there is one.
struct ProfileView<'a> {
    path: Option<&'a Path>,
    document: Option<&'a DocumentMut>,
    profile: &'a str,
}

impl ProfileView<'_> {
    /// One half of the token, with whether it came from the environment: `variable` if set,
    /// else the profile's `key`; `None` when neither holds a non-empty value.
    fn half(&self, env: &dyn Env, variable: &str, key: &str) -> Result<Option<(String, bool)>> {
        if let Some(value) = env.var(variable) {
            return Ok(Some((value, true)));
        }
        let Some(item) = self.table().and_then(|t| t.get(key)) else { return Ok(None) };
        match item.as_str() {
            Some("") => Ok(None),
            Some(value) => Ok(Some((value.to_owned(), false))),
            None => Err(Error::usage(self.describe(), format!("`{key}` is not a string")).fix(FIX_FILE)),
        }
    }

    fn table(&self) -> Option<&dyn toml_edit::TableLike> {
        self.document?.get(self.profile)?.as_table_like()
    }

    /// The config file, saying when it does not exist or has no known place.
    fn file(&self) -> String {
        match (self.path, self.document) {
            (Some(path), Some(_)) => path.display().to_string(),
            (Some(path), None) => format!("{} (no such file)", path.display()),
            (None, _) => "~/.modal.toml (HOME is not set)".to_owned(),
        }
    }

    /// "profile 'p' of /home/u/.modal.toml", or the file alone when there is none.
    fn describe(&self) -> String {
        match self.document {
            Some(_) => format!("profile '{}' of {}", self.profile, self.file()),
            None => self.file(),
        }
    }

    /// The error for a token that is not there, naming everything looked at.
    fn missing(&self, env: &dyn Env) -> Error {
        let profile = self.profile;
        if env.var(PROFILE_VARIABLE).is_some() && self.table().is_none() {
            return Error::usage("Modal token", format!("{PROFILE_VARIABLE} names profile '{profile}', which {} does not have", self.file()))
                .fix(format!("run `modal profile list` to see the profiles, or `modal token new --profile {profile}` to add it"));
        }
        let cause = format!("neither {ID_VARIABLE} and {SECRET_VARIABLE} nor {} hold both token_id and token_secret", self.describe());
        let file = self.path.map_or_else(|| "~/.modal.toml".to_owned(), |path| path.display().to_string());
        Error::usage("Modal token", cause).fix(format!("run `modal token new` (it saves the token in {file}), or set {ID_VARIABLE} and {SECRET_VARIABLE}"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::prefect::settings::MapEnv;

    const SECRET: &str = "as-s3cr3tV4lu3";

    /// A home directory holding `.modal.toml` with `config`, and the environment pointing at it.
    fn home_with(config: &str, vars: &[(&'static str, &str)]) -> (tempfile::TempDir, MapEnv) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".modal.toml"), config).unwrap();
        let mut env = HashMap::from([("HOME", dir.path().display().to_string())]);
        env.extend(vars.iter().map(|(k, v)| (*k, v.to_string())));
        (dir, MapEnv(env))
    }

    fn profile_source(dir: &tempfile::TempDir, profile: &str, overridden: Option<&'static str>) -> TokenSource {
        TokenSource::Profile { path: dir.path().join(".modal.toml"), profile: profile.into(), overridden }
    }

    fn failure(config: &str, vars: &[(&'static str, &str)]) -> Error {
        let (_dir, env) = home_with(config, vars);
        let error = discover(&env).unwrap_err();
        assert!(!error.to_string().contains(SECRET), "the secret leaked into: {error}");
        error
    }

    #[test]
    fn the_environment_is_the_variables_else_the_profiles() {
        let config = format!("[work]\nactive = true\ntoken_id = \"ak-1\"\ntoken_secret = \"{SECRET}\"\nenvironment = \"staging\"\n");
        let (_dir, env) = home_with(&config, &[]);
        assert_eq!(discover(&env).unwrap().environment.as_deref(), Some("staging"));
        let (_dir, env) = home_with(&config, &[("MODAL_ENVIRONMENT", "prod")]);
        assert_eq!(discover(&env).unwrap().environment.as_deref(), Some("prod"));
        let (_dir, env) = home_with(&format!("[default]\ntoken_id = \"ak-1\"\ntoken_secret = \"{SECRET}\"\n"), &[]);
        assert_eq!(discover(&env).unwrap().environment, None, "the workspace's default environment");
    }

    #[test]
    fn both_variables_win_over_the_file() {
        let (_dir, env) = home_with("[default]\ntoken_id = \"ak-file\"\ntoken_secret = \"as-file\"\n", &[(ID_VARIABLE, "ak-env"), (SECRET_VARIABLE, SECRET)]);
        let token = discover(&env).unwrap();
        assert_eq!((token.token_id.as_str(), token.token_secret.expose()), ("ak-env", SECRET));
        assert_eq!(token.source, TokenSource::Environment);
    }

    #[test]
    fn variables_alone_need_no_file_nor_home() {
        let env = MapEnv(HashMap::from([(ID_VARIABLE, "ak-env".to_owned()), (SECRET_VARIABLE, SECRET.to_owned())]));
        assert_eq!(discover(&env).unwrap().source, TokenSource::Environment);
    }

    #[test]
    fn the_default_profile_of_the_home_file() {
        let (dir, env) = home_with(&format!("[default]\ntoken_id = \"ak-1\"\ntoken_secret = \"{SECRET}\"\n"), &[]);
        let token = discover(&env).unwrap();
        assert_eq!((token.token_id.as_str(), token.token_secret.expose()), ("ak-1", SECRET));
        assert_eq!(token.source, profile_source(&dir, "default", None));
        assert_eq!(token.source.to_string(), format!("profile 'default' of {}", dir.path().join(".modal.toml").display()));
    }

    #[test]
    fn one_variable_overrides_its_half_of_the_profile() {
        let (dir, env) = home_with("[default]\ntoken_id = \"ak-file\"\ntoken_secret = \"as-file\"\n", &[(ID_VARIABLE, "ak-env")]);
        let token = discover(&env).unwrap();
        assert_eq!((token.token_id.as_str(), token.token_secret.expose()), ("ak-env", "as-file"));
        assert_eq!(token.source, profile_source(&dir, "default", Some(ID_VARIABLE)));
        assert!(token.source.to_string().ends_with(" and MODAL_TOKEN_ID"));
    }

    #[test]
    fn modal_config_path_moves_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("elsewhere.toml");
        std::fs::write(&path, "[default]\ntoken_id = \"ak-2\"\ntoken_secret = \"as-2\"\n").unwrap();
        let (_home, mut env) = home_with("[default]\ntoken_id = \"ak-home\"\ntoken_secret = \"as-home\"\n", &[]);
        env.0.insert("MODAL_CONFIG_PATH", path.display().to_string());
        let token = discover(&env).unwrap();
        assert_eq!(token.token_id, "ak-2");
        assert_eq!(token.source, TokenSource::Profile { path, profile: "default".into(), overridden: None });
    }

    const TWO_PROFILES: &str = "[alpha]\ntoken_id = \"ak-a\"\ntoken_secret = \"as-a\"\n\n[beta]\nactive = true\ntoken_id = \"ak-b\"\ntoken_secret = \"as-b\"\n";

    #[test]
    fn the_active_profile_unless_modal_profile_names_another() {
        let (dir, env) = home_with(TWO_PROFILES, &[]);
        let token = discover(&env).unwrap();
        assert_eq!(token.token_id, "ak-b");
        assert_eq!(token.source, profile_source(&dir, "beta", None));

        let (_dir, env) = home_with(TWO_PROFILES, &[(PROFILE_VARIABLE, "alpha")]);
        assert_eq!(discover(&env).unwrap().token_id, "ak-a");
    }

    #[test]
    fn only_active_true_makes_a_profile_active() {
        let (_dir, env) =
            home_with("[a]\nactive = \"true\"\ntoken_id = \"ak-a\"\ntoken_secret = \"as-a\"\n[b]\nactive = true\ntoken_id = \"ak-b\"\ntoken_secret = \"as-b\"\n", &[]);
        assert_eq!(discover(&env).unwrap().token_id, "ak-b");
    }

    #[test]
    fn inline_tables_are_profiles_too() {
        let (_dir, env) = home_with("default = { token_id = \"ak-i\", token_secret = \"as-i\" }\n", &[]);
        assert_eq!(discover(&env).unwrap().token_id, "ak-i");
    }

    #[test]
    fn two_active_profiles_or_none_of_several_are_the_clients_errors() {
        let error = failure("[a]\nactive = true\n[b]\nactive = true\n", &[]);
        assert!(error.cause.contains("'a' and 'b' are both active"), "{error}");
        assert!(error.fix.unwrap().contains("modal profile activate"));

        let error = failure(&format!("[a]\ntoken_id = \"ak-a\"\ntoken_secret = \"{SECRET}\"\n[b]\n"), &[]);
        assert!(error.cause.contains("none of its 2 profiles is active"), "{error}");
        // The client checks the profile's name, not where it came from: MODAL_PROFILE=default
        // fails alike, another name passes.
        let error = failure("[a]\n[b]\n", &[(PROFILE_VARIABLE, "default")]);
        assert!(error.cause.contains("none of its 2 profiles is active"), "{error}");
        let (_dir, env) = home_with("[a]\ntoken_id = \"ak-a\"\ntoken_secret = \"as-a\"\n[b]\n", &[(PROFILE_VARIABLE, "a")]);
        assert_eq!(discover(&env).unwrap().token_id, "ak-a");
    }

    #[test]
    fn a_profile_missing_from_the_file_is_named() {
        let error = failure(TWO_PROFILES, &[(PROFILE_VARIABLE, "gamma")]);
        assert!(error.cause.contains("MODAL_PROFILE names profile 'gamma'"), "{error}");
        assert!(error.fix.unwrap().contains("modal token new --profile gamma"));
    }

    #[test]
    fn but_a_missing_profile_is_fine_when_the_variables_hold_the_token() {
        let (_dir, env) = home_with(TWO_PROFILES, &[(PROFILE_VARIABLE, "gamma"), (ID_VARIABLE, "ak-e"), (SECRET_VARIABLE, "as-e")]);
        assert_eq!(discover(&env).unwrap().source, TokenSource::Environment);
    }

    #[test]
    fn no_token_names_the_command_the_variables_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let env = MapEnv(HashMap::from([("HOME", dir.path().display().to_string())]));
        let error = discover(&env).unwrap_err();
        assert_eq!(error.what, "Modal token");
        assert!(error.cause.contains("MODAL_TOKEN_ID and MODAL_TOKEN_SECRET"), "{error}");
        assert!(error.cause.contains(&format!("{} (no such file)", dir.path().join(".modal.toml").display())), "{error}");
        assert!(error.fix.unwrap().contains("modal token new"));

        // Half a token is no token; the half that is there does not leak.
        let error = failure(&format!("[default]\ntoken_id = \"\"\ntoken_secret = \"{SECRET}\"\n"), &[]);
        assert!(error.cause.contains("profile 'default' of"), "{error}");

        let error = discover(&MapEnv(HashMap::new())).unwrap_err();
        assert!(error.cause.contains("HOME is not set"), "{error}");
    }

    #[test]
    fn malformed_files_are_errors_that_name_the_file() {
        for config in [
            format!("[default]\ntoken_secret = {SECRET}\n"),
            format!("[default]\ntoken_secret = \"{SECRET}\n"),
            format!("[default\ntoken_secret = \"{SECRET}\"\n"),
            format!("[default]\ntoken_secret = \"{SECRET}\"\ntoken_secret = \"{SECRET}\"\n"),
        ] {
            let error = failure(&config, &[]);
            assert!(error.what.starts_with("Modal config ") && error.what.ends_with(".modal.toml"), "{error}");
            assert!(error.cause.starts_with("not valid TOML at line "), "{error}");
        }
        let error = failure(&format!("token_secret = \"{SECRET}\"\n"), &[]);
        assert!(error.cause.contains("`token_secret` is not a table"), "{error}");
        let error = failure("[default]\ntoken_id = 12\ntoken_secret = \"as-x\"\n", &[]);
        assert!(error.cause.contains("`token_id` is not a string"), "{error}");
    }

    #[test]
    fn a_malformed_file_is_an_error_even_when_the_variables_hold_the_token() {
        failure("[default\n", &[(ID_VARIABLE, "ak-e"), (SECRET_VARIABLE, SECRET)]);
    }
}
