//! Logs Docker into a registry through the docker CLI, with the password on standard input
//! (`--password-stdin`), never on the command line where `ps` and logs would show it.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// What a login attempt did.
#[derive(Debug, PartialEq, Eq)]
pub enum Login {
    /// Docker accepted the credentials.
    Done,
    /// No `docker` on PATH: the rest of the provisioning stands.
    NotInstalled,
}

/// Runs `docker login --username USER --password-stdin REGISTRY`.
pub async fn login(registry: &str, user: &str, password: &Secret) -> Result<Login> {
    let what = format!("docker login to {registry}");
    let child = Command::new("docker")
        .args(["login", "--username", user, "--password-stdin", registry])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Login::NotInstalled),
        Err(e) => return Err(Error::remote(what, e.to_string())),
    };
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin.write_all(password.expose().as_bytes()).await.map_err(|e| Error::remote(&what, e.to_string()))?;
    drop(stdin);
    let output = child.wait_with_output().await.map_err(|e| Error::remote(&what, e.to_string()))?;
    if output.status.success() {
        return Ok(Login::Done);
    }
    // Docker does not echo the password, but a wrapper might: never pass it on.
    let stderr = String::from_utf8_lossy(&output.stderr).replace(password.expose(), "***");
    Err(Error::remote(what, format!("docker exited with {}: {}", output.status, stderr.trim())).fix("check that the Docker daemon runs (`docker info`), then run again"))
}

/// Docker's configuration file, as the docker CLI finds it: `$DOCKER_CONFIG/config.json`,
/// else `config.json` under `.docker` in the home directory.
fn config_path() -> Result<std::path::PathBuf> {
    use crate::prefect::settings::{Env, ProcessEnv, home_dir};
    if let Some(dir) = ProcessEnv.var("DOCKER_CONFIG") {
        return Ok(std::path::PathBuf::from(dir).join("config.json"));
    }
    home_dir(&ProcessEnv).map(|home| home.join(".docker").join("config.json")).ok_or_else(|| {
        Error::usage("Docker configuration", "no home directory is set (HOME, or USERPROFILE on Windows)").fix("set DOCKER_CONFIG to Docker's configuration directory")
    })
}

/// Makes Docker use the credential helper `docker-credential-<helper>` for `registry`, as
/// `gcloud auth configure-docker` does: one `credHelpers` entry in Docker's configuration,
/// everything else in the file kept. No password is stored anywhere.
pub fn use_helper(registry: &str, helper: &str) -> Result<Login> {
    add_helper(&config_path()?, registry, helper)
}

fn add_helper(path: &std::path::Path, registry: &str, helper: &str) -> Result<Login> {
    let what = format!("Docker configuration {}", path.display());
    let mut config: serde_json::Value = match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => serde_json::json!({}),
        Ok(text) => serde_json::from_str(&text).map_err(|e| Error::usage(&what, format!("is not JSON: {e}")).fix("fix the file, then run again"))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(Error::usage(&what, e.to_string())),
    };
    let Some(fields) = config.as_object_mut() else {
        return Err(Error::usage(&what, "is not a JSON object").fix("fix the file, then run again"));
    };
    let helpers = fields.entry("credHelpers").or_insert_with(|| serde_json::json!({}));
    if helpers.get(registry).and_then(|h| h.as_str()) == Some(helper) {
        return Ok(Login::Done);
    }
    let Some(helpers) = helpers.as_object_mut() else {
        return Err(Error::usage(&what, "has a credHelpers entry that is not an object").fix("fix the file, then run again"));
    };
    helpers.insert(registry.to_owned(), helper.into());
    let text = serde_json::to_string_pretty(&config).map_err(|e| Error::usage(&what, e.to_string()))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::usage(&what, e.to_string()))?;
    }
    // Written beside and renamed over, so that a crash never leaves half a file.
    let partial = path.with_extension("json.pushpool");
    std::fs::write(&partial, text).and_then(|()| std::fs::rename(&partial, path)).map_err(|e| Error::usage(&what, e.to_string()))?;
    Ok(Login::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_helper_entry_is_added_and_the_rest_of_the_file_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"auths": {"ghcr.io": {}}, "credHelpers": {"gcr.io": "gcloud"}}"#).unwrap();
        assert_eq!(add_helper(&path, "us-central1-docker.pkg.dev", "gcloud").unwrap(), Login::Done);
        let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(config["credHelpers"], serde_json::json!({"gcr.io": "gcloud", "us-central1-docker.pkg.dev": "gcloud"}));
        assert_eq!(config["auths"], serde_json::json!({"ghcr.io": {}}));
        let fresh = dir.path().join("new").join("config.json");
        add_helper(&fresh, "europe-west1-docker.pkg.dev", "gcloud").unwrap();
        assert!(std::fs::read_to_string(&fresh).unwrap().contains("europe-west1-docker.pkg.dev"));
    }
}
