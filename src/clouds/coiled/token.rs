//! The Coiled token of this machine, found as Coiled's client finds it, without running Python.
//!
//! Coiled's client reads dask config key `coiled.token` (see [`super::dask_config`] for where
//! dask looks and what wins); Prefect's own Coiled provisioner reads the same key. `coiled login`
//! saves `coiled.yaml` in dask's config directory (`DASK_CONFIG`, else `~/.config/dask`;
//! coiled's `save_config`) with `coiled.user`, `coiled.token`, `coiled.server` and, when a
//! workspace was chosen, `coiled.workspace`. The workspace is `coiled.workspace`, else the older
//! `coiled.account` (coiled's `login_if_required`). The client strips blanks around the token.
//! The key names hold neither `-` nor `_`, so dask's equal treatment of those does not arise.

use serde_json::Value;

use super::dask_config::{DaskConfig, Origin, kind, variable_name};
use crate::error::{Error, Result};
use crate::prefect::settings::Env;
use crate::secret::Secret;

const TOKEN: &str = "coiled.token";
const WORKSPACE: &str = "coiled.workspace";
const ACCOUNT: &str = "coiled.account";

/// A Coiled token, the workspace the login chose if any, and where the token was found.
#[derive(Debug, Clone)]
pub struct CoiledToken {
    /// The API token.
    pub token: Secret,
    /// `coiled.workspace`, else `coiled.account`; `None` means the user's default workspace.
    pub workspace: Option<String>,
    /// The variable or file the token came from, for the plan header and errors.
    pub source: Origin,
}

/// Finds the token by the client's rules (see the module docs).
pub fn discover(env: &dyn Env) -> Result<CoiledToken> {
    let config = DaskConfig::load(env, &[TOKEN, WORKSPACE, ACCOUNT])?;
    let Some((token, source)) = text(&config, TOKEN)? else {
        let paths: Vec<String> = config.paths().iter().map(|p| p.display().to_string()).collect();
        let found = match config.get(TOKEN) {
            Some((_, origin)) => format!("{TOKEN} is empty in {origin}"),
            None => format!("neither {} nor a YAML file in {} sets {TOKEN}", variable_name(TOKEN), paths.join(", ")),
        };
        return Err(Error::usage("Coiled token", found)
            .fix(format!("run `coiled login` (it saves the token in coiled.yaml of DASK_CONFIG, else ~/.config/dask), or set {}", variable_name(TOKEN))));
    };
    let workspace = match text(&config, WORKSPACE)? {
        Some(workspace) => Some(workspace),
        None => text(&config, ACCOUNT)?,
    };
    Ok(CoiledToken { token: Secret::new(token), workspace: workspace.map(|(name, _)| name), source: source.clone() })
}

/// A key's value, blanks stripped, and where it came from; `None` when no source has it or it is
/// empty; an error, which never shows the value, when it is not text.
fn text<'a>(config: &'a DaskConfig, key: &str) -> Result<Option<(String, &'a Origin)>> {
    match config.get(key) {
        None | Some((Value::Null, _)) => Ok(None),
        Some((Value::String(value), origin)) => Ok(Some(value.trim()).filter(|v| !v.is_empty()).map(|v| (v.to_owned(), origin))),
        Some((value, origin)) => Err(Error::usage(format!("dask config {origin}"), format!("{key} is {}, not text", kind(value)))
            .fix(format!("quote the value of {key}: coiled's client needs a string"))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use super::*;
    use crate::prefect::settings::MapEnv;

    const SECRET: &str = "c01l3d-s3cr3t";

    /// A home with `~/.config/dask/coiled.yaml` holding `yaml` (none when empty), and the
    /// environment: HOME, an empty DASK_ROOT_CONFIG directory, and `vars`.
    fn home_with(yaml: &str, vars: &[(&'static str, &str)]) -> (tempfile::TempDir, MapEnv) {
        let dir = tempfile::tempdir().unwrap();
        let dask = dir.path().join(".config/dask");
        std::fs::create_dir_all(&dask).unwrap();
        std::fs::create_dir_all(dir.path().join("etc-dask")).unwrap();
        if !yaml.is_empty() {
            std::fs::write(dask.join("coiled.yaml"), yaml).unwrap();
        }
        let mut env = HashMap::from([("HOME", dir.path().display().to_string()), ("DASK_ROOT_CONFIG", dir.path().join("etc-dask").display().to_string())]);
        env.extend(vars.iter().map(|(k, v)| (*k, v.to_string())));
        (dir, MapEnv(env))
    }

    fn coiled_yaml(dir: &Path) -> Origin {
        Origin::File(dir.join(".config/dask/coiled.yaml"))
    }

    fn failure(yaml: &str, vars: &[(&'static str, &str)]) -> Error {
        let (_dir, env) = home_with(yaml, vars);
        let error = discover(&env).unwrap_err();
        assert!(!error.to_string().contains(SECRET), "the token leaked into: {error}");
        error
    }

    #[test]
    fn what_coiled_login_saves() {
        let saved = format!("coiled:\n  server: https://cloud.coiled.io\n  token: {SECRET}\n  user: someone\n  workspace: team-a\n");
        let (dir, env) = home_with(&saved, &[]);
        let token = discover(&env).unwrap();
        assert_eq!(token.token.expose(), SECRET);
        assert_eq!(token.workspace.as_deref(), Some("team-a"));
        assert_eq!(token.source, coiled_yaml(dir.path()));
    }

    #[test]
    fn the_variable_wins_and_blanks_are_stripped() {
        let (_dir, env) = home_with("coiled:\n  token: from-file\n", &[("DASK_COILED__TOKEN", &format!(" {SECRET} "))]);
        let token = discover(&env).unwrap();
        assert_eq!(token.token.expose(), SECRET);
        assert_eq!(token.source, Origin::Variable("DASK_COILED__TOKEN".into()));
        assert_eq!(token.workspace, None);
    }

    #[test]
    fn the_workspace_falls_back_to_the_older_account_key() {
        let (_dir, env) = home_with("coiled:\n  token: t0k3n\n  account: old-team\n", &[]);
        assert_eq!(discover(&env).unwrap().workspace.as_deref(), Some("old-team"));
        let (_dir, env) = home_with("coiled:\n  token: t0k3n\n  account: old-team\n  workspace: ''\n", &[("DASK_COILED__WORKSPACE", "new-team")]);
        assert_eq!(discover(&env).unwrap().workspace.as_deref(), Some("new-team"));
    }

    #[test]
    fn no_token_names_the_command_the_variable_and_the_directories() {
        let (dir, env) = home_with("", &[]);
        let error = discover(&env).unwrap_err();
        assert_eq!(error.what, "Coiled token");
        assert!(error.cause.contains("DASK_COILED__TOKEN"), "{error}");
        assert!(error.cause.contains(&dir.path().join(".config/dask").display().to_string()), "{error}");
        assert!(error.fix.unwrap().contains("coiled login"));

        let error = failure("coiled:\n  token: ''\n", &[]);
        assert!(error.cause.starts_with("coiled.token is empty in "), "{error}");
        let error = failure(&format!("coiled:\n  token: {SECRET}\n"), &[("DASK_COILED__TOKEN", "None")]);
        assert_eq!(error.cause, "coiled.token is empty in DASK_COILED__TOKEN");
    }

    #[test]
    fn a_token_that_is_not_text_is_an_error_that_does_not_show_it() {
        let error = failure("coiled:\n  token: 12345678\n", &[]);
        assert!(error.cause.contains("coiled.token is a number, not text"), "{error}");
        assert!(!error.to_string().contains("12345678"), "{error}");
        let error = failure(&format!("coiled:\n  token:\n    nested: {SECRET}\n"), &[]);
        assert!(error.cause.contains("is a mapping"), "{error}");
    }

    #[test]
    fn a_malformed_config_file_is_an_error() {
        let error = failure(&format!("coiled:\n  token: \"{SECRET}\n"), &[]);
        assert!(error.what.ends_with("coiled.yaml") && error.cause.starts_with("not valid YAML"), "{error}");
    }
}
