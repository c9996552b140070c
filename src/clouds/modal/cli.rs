//! The `modal` command-line client, which is how Modal users already manage their Secrets:
//! pushpool lists, writes and deletes Secrets through it, with the user's own token and
//! environment, as the client resolves them.
//!
//! A Secret's values never go on a command line (where `ps` and shell history show them):
//! they are written to a JSON file only the user can read (mode 0600 where files have modes;
//! the user's own temporary directory on Windows), handed over with `--from-json`, and removed
//! as soon as the client is done. A run killed in between leaves the file behind: the next
//! write removes it. Where locks are advisory (Linux, macOS) a run holds an exclusive lock on
//! its file while it exists, so one whose lock is free was left by a run that is gone and goes
//! at once; elsewhere (Windows, where a lock would keep the client from reading the file) files
//! of that name pattern go once older than [`STALE_AFTER`].

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// How the Modal client is installed, for the error when it is not.
pub const INSTALL: &str = "install the Modal client (`pip install modal`, or `uv tool install modal`), run `modal token new` if it has no token, then run again";

/// The name of every values file starts so, in the system's temporary directory.
const FILE_PREFIX: &str = "pushpool-modal-secret-";

/// A values file older than this belongs to a run that was killed, whatever its lock says.
const STALE_AFTER: Duration = Duration::from_secs(600);

/// How long one call of the client may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// The installed `modal` client.
pub struct ModalCli {
    program: PathBuf,
}

impl ModalCli {
    /// The client on PATH; the error says how to install it.
    pub fn find(what: &str) -> Result<Self> {
        let program = crate::program::on_path("modal").ok_or_else(|| Error::usage(what, "needs the `modal` command-line client, which is not on PATH").fix(INSTALL))?;
        Ok(Self { program })
    }

    /// The names of the Secrets of the client's environment (`modal secret list --json`).
    pub async fn secret_names(&self) -> Result<Vec<String>> {
        let output = self.run(&["secret", "list", "--json"], "Modal Secrets").await?;
        let listed: Value =
            serde_json::from_str(output.trim()).map_err(|e| Error::remote("Modal Secrets", format!("`modal secret list --json` printed no JSON list: {e}")))?;
        // Newer clients key each row `name`, older ones `Name`.
        let name = |row: &Value| row.as_object()?.iter().find(|(key, _)| key.eq_ignore_ascii_case("name"))?.1.as_str().map(str::to_owned);
        Ok(listed.as_array().into_iter().flatten().filter_map(name).collect())
    }

    /// Creates Secret `name` with `values`, or replaces the values of the one that exists.
    pub async fn write_secret(&self, name: &str, values: &BTreeMap<String, Secret>) -> Result<()> {
        let what = format!("Modal Secret {name}");
        remove_stale_files(&std::env::temp_dir());
        let file = values_file(values).map_err(|e| Error::remote(&what, format!("the values file could not be written: {e}")))?;
        let path = file.path().to_string_lossy().into_owned();
        let written = self.run(&["secret", "create", name, "--from-json", &path, "--force"], &what).await;
        // Removed before anything else happens, whatever the client did.
        let removed = file.close();
        written?;
        removed.map_err(|e| Error::remote(what, format!("the secret was written, but its values file {path} could not be removed: {e}")).fix(format!("delete {path}")))
    }

    /// Deletes Secret `name`.
    pub async fn delete_secret(&self, name: &str) -> Result<()> {
        self.run(&["secret", "delete", name, "--yes"], &format!("Modal Secret {name}")).await.map(drop)
    }

    /// Runs the client with `args`; its standard output, or an error with the end of what it
    /// printed on standard error (which names keys, never values).
    async fn run(&self, args: &[&str], what: &str) -> Result<String> {
        let command = format!("modal {}", args.iter().take(2).copied().collect::<Vec<_>>().join(" "));
        let child = tokio::process::Command::new(&self.program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::remote(what, format!("`{command}` could not be started ({}): {e}", self.program.display())).fix(INSTALL))?;
        let output = tokio::time::timeout(CALL_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| Error::remote(what, format!("`{command}` did not finish within {} s", CALL_TIMEOUT.as_secs())))?
            .map_err(|e| Error::remote(what, format!("`{command}` failed: {e}")))?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let said: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let said = said[said.len().saturating_sub(3)..].join(" / ");
        Err(Error::remote(what, format!("`{command}` failed ({}): {said}", output.status))
            .fix("check that `modal token info` works with the token pushpool found, then run again"))
    }
}

/// A new file readable by its owner only, holding `values` as a JSON object.
fn values_file(values: &BTreeMap<String, Secret>) -> std::io::Result<tempfile::NamedTempFile> {
    let mut file = tempfile::Builder::new().prefix(FILE_PREFIX).suffix(".json").tempfile()?;
    // Locked before anything is written: an unlocked file that holds values is a dead run's.
    #[cfg(unix)]
    file.as_file().lock()?;
    let exposed: serde_json::Map<String, Value> = values.iter().map(|(key, value)| (key.clone(), Value::from(value.expose()))).collect();
    file.write_all(Value::Object(exposed).to_string().as_bytes())?;
    file.flush()?;
    Ok(file)
}

/// Removes the values files in `dir` that killed runs left behind. Best effort: a file that
/// is another user's, or already gone, stays as it is.
fn remove_stale_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten().filter(|e| e.file_name().to_string_lossy().starts_with(FILE_PREFIX)) {
        let Ok(metadata) = entry.metadata() else { continue };
        let old = metadata.modified().ok().and_then(|t| t.elapsed().ok()).is_some_and(|age| age > STALE_AFTER);
        if old || abandoned(&entry.path(), metadata.len()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether a values file of `len` bytes has no live run: it holds values, and nobody holds its
/// lock (an empty one may be a live run's, between creating and locking it).
#[cfg(unix)]
fn abandoned(path: &Path, len: u64) -> bool {
    len > 0 && std::fs::File::open(path).is_ok_and(|file| file.try_lock().is_ok())
}

/// Windows locks are mandatory (the client could not read a locked file): age alone tells.
#[cfg(not(unix))]
fn abandoned(_: &Path, _: u64) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_values_file_is_the_owners_only_and_goes_when_closed() {
        let values = BTreeMap::from([("AWS_SECRET_ACCESS_KEY".to_owned(), Secret::new("s3cr3t"))]);
        let file = values_file(&values).unwrap();
        let text = std::fs::read_to_string(file.path()).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), serde_json::json!({"AWS_SECRET_ACCESS_KEY": "s3cr3t"}));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(file.path()).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let path = file.path().to_owned();
        file.close().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn only_files_of_the_pattern_that_no_live_run_holds_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(format!("{FILE_PREFIX}old.json"));
        let dead = dir.path().join(format!("{FILE_PREFIX}dead.json"));
        let other = dir.path().join("other.json");
        for path in [&old, &dead, &other] {
            std::fs::write(path, "{}").unwrap();
        }
        let long_ago = std::time::SystemTime::now() - 2 * STALE_AFTER;
        for path in [&old, &other] {
            std::fs::File::options().write(true).open(path).unwrap().set_modified(long_ago).unwrap();
        }
        // A live run's file, locked while it exists, in the same directory.
        let live = tempfile::Builder::new().prefix(FILE_PREFIX).suffix(".json").tempfile_in(dir.path()).unwrap();
        #[cfg(unix)]
        live.as_file().lock().unwrap();
        std::fs::write(live.path(), "{}").unwrap();
        remove_stale_files(dir.path());
        assert!(!old.exists() && other.exists() && live.path().exists());
        // Fresh, unlocked and holding values: a killed run's, gone at once where locks tell.
        assert_eq!(dead.exists(), cfg!(not(unix)));
    }
}
