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
    Err(Error::remote(what, format!("docker exited with {}: {}", output.status, stderr.trim()))
        .fix("check that the Docker daemon runs (`docker info`), then run again"))
}
