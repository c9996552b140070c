//! Writes settings into the active Prefect profile (the Docker build namespace, the default
//! work pool), keeping every other line, comment and setting of `profiles.toml` as it was.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use toml_edit::{DocumentMut, Item, Table, value};

use super::settings::{ProfileFile, read_profiles};
use crate::error::{Error, Result};

/// The setting Prefect reads for the work pool of a deployment that names none
/// (`prefect deploy`, `flow.deploy()`); `prefect work-pool create --set-as-default` writes it
/// to the active profile, and pushpool's `--set-as-default` does the same.
pub const DEFAULT_POOL_KEY: &str = "PREFECT_DEFAULT_WORK_POOL_NAME";

/// The string value of setting `key` in the active profile, if it is set.
pub fn profile_value(profile: &ProfileFile, key: &str) -> Result<Option<String>> {
    let Some(document) = read_profiles(&profile.path)? else { return Ok(None) };
    Ok(document.get("profiles").and_then(|p| p.get(&profile.active)).and_then(|p| p.get(key)).and_then(|v| v.as_str()).map(str::to_owned))
}

/// Sets `key` to `setting` in the active profile, creating the file (private to the user, as
/// Prefect does) or the profile's table when missing. The file is replaced atomically.
pub fn set_profile_value(profile: &ProfileFile, key: &str, setting: &str) -> Result<()> {
    let what = || format!("Prefect profiles {}", profile.path.display());
    let mut document = read_profiles(&profile.path)?.unwrap_or_else(|| {
        let mut fresh = DocumentMut::new();
        fresh["active"] = value(profile.active.as_str());
        fresh
    });
    let profiles = document.entry("profiles").or_insert_with(|| {
        let mut table = Table::new();
        table.set_implicit(true);
        Item::Table(table)
    });
    let profiles = profiles.as_table_mut().ok_or_else(|| Error::usage(what(), "`profiles` is not a table"))?;
    let active = profiles.entry(&profile.active).or_insert_with(|| Item::Table(Table::new()));
    let active = active.as_table_like_mut().ok_or_else(|| Error::usage(what(), format!("profile '{}' is not a table", profile.active)))?;
    active.insert(key, value(setting));
    write_atomically(&profile.path, document.to_string().as_bytes()).map_err(|e| Error::usage(what(), e.to_string()))
}

/// Writes `path` through a temporary file beside it, then renames it over `path` (on Windows
/// too: the rename replaces an existing file).
fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.pushpool-tmp", path.file_name().unwrap_or_default().to_string_lossy()));
    let mut file = create_private(&tmp, path)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Creates (or truncates) `tmp` with the permissions of `replaced`, or 0600 when there is no
/// such file: the profile may hold an API key. Set after opening too, so that neither the
/// umask nor a temporary file left by an interrupted run decides them.
#[cfg(unix)]
fn create_private(tmp: &Path, replaced: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mode = std::fs::metadata(replaced).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o600);
    let file = OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(tmp)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    Ok(file)
}

/// Creates (or truncates) `tmp`. Windows has no mode bits: the file inherits the access list
/// of its directory, the user's own profile directory, as Prefect's file does.
#[cfg(not(unix))]
fn create_private(tmp: &Path, _replaced: &Path) -> std::io::Result<File> {
    OpenOptions::new().write(true).create(true).truncate(true).open(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The setting Prefect 3 reads for `prefect deploy`'s image namespace (the ECS blueprint
    /// names it for its `prefect.profile_setting` node).
    const BUILD_NAMESPACE_KEY: &str = "PREFECT_DEPLOYMENTS_DEFAULT_DOCKER_BUILD_NAMESPACE";

    #[test]
    fn keeps_every_other_line_and_comment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profiles.toml");
        let original = "# my settings\nactive = \"work\"\n\n[profiles.default]\nPREFECT_API_URL = \"http://a/api\"\n\n[profiles.work]\n# the team server\nPREFECT_API_URL = \"http://b/api\"\nPREFECT_LOGGING_LEVEL = \"DEBUG\"\n";
        std::fs::write(&path, original).unwrap();
        let profile = ProfileFile { path: path.clone(), active: "work".into() };
        set_profile_value(&profile, BUILD_NAMESPACE_KEY, "123.dkr.ecr.us-east-1.amazonaws.com").unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert_eq!(written, original.to_owned() + "PREFECT_DEPLOYMENTS_DEFAULT_DOCKER_BUILD_NAMESPACE = \"123.dkr.ecr.us-east-1.amazonaws.com\"\n");
        assert_eq!(profile_value(&profile, BUILD_NAMESPACE_KEY).unwrap().as_deref(), Some("123.dkr.ecr.us-east-1.amazonaws.com"));
        assert_eq!(profile_value(&profile, "PREFECT_LOGGING_LEVEL").unwrap().as_deref(), Some("DEBUG"));
    }

    #[test]
    fn creates_the_file_when_there_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let profile = ProfileFile { path: dir.path().join("home/profiles.toml"), active: "default".into() };
        assert_eq!(profile_value(&profile, BUILD_NAMESPACE_KEY).unwrap(), None);
        set_profile_value(&profile, BUILD_NAMESPACE_KEY, "ns").unwrap();
        let written = std::fs::read_to_string(&profile.path).unwrap();
        assert!(written.starts_with("active = \"default\"\n"), "{written}");
        assert_eq!(profile_value(&profile, BUILD_NAMESPACE_KEY).unwrap().as_deref(), Some("ns"));
    }

    #[test]
    fn a_second_key_keeps_the_first_and_a_new_value_replaces_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let profile = ProfileFile { path: dir.path().join("profiles.toml"), active: "default".into() };
        set_profile_value(&profile, BUILD_NAMESPACE_KEY, "ns").unwrap();
        set_profile_value(&profile, DEFAULT_POOL_KEY, "my-pool").unwrap();
        set_profile_value(&profile, DEFAULT_POOL_KEY, "other-pool").unwrap();
        assert_eq!(profile_value(&profile, BUILD_NAMESPACE_KEY).unwrap().as_deref(), Some("ns"));
        assert_eq!(profile_value(&profile, DEFAULT_POOL_KEY).unwrap().as_deref(), Some("other-pool"));
        let written = std::fs::read_to_string(&profile.path).unwrap();
        assert_eq!(written.matches(DEFAULT_POOL_KEY).count(), 1, "{written}");
    }

    #[cfg(unix)]
    mod modes {
        use std::os::unix::fs::PermissionsExt;

        use super::*;

        fn mode(path: &Path) -> u32 {
            std::fs::metadata(path).unwrap().permissions().mode() & 0o777
        }

        #[test]
        fn a_new_file_is_private() {
            let dir = tempfile::tempdir().unwrap();
            let profile = ProfileFile { path: dir.path().join("home/profiles.toml"), active: "default".into() };
            set_profile_value(&profile, BUILD_NAMESPACE_KEY, "ns").unwrap();
            assert_eq!(mode(&profile.path), 0o600);
        }

        #[test]
        fn an_existing_file_keeps_its_mode() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("profiles.toml");
            std::fs::write(&path, "active = \"default\"\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            set_profile_value(&ProfileFile { path: path.clone(), active: "default".into() }, DEFAULT_POOL_KEY, "p").unwrap();
            assert_eq!(mode(&path), 0o640);
        }

        #[test]
        fn a_leftover_temporary_file_does_not_decide_the_mode() {
            let dir = tempfile::tempdir().unwrap();
            let leftover = dir.path().join(".profiles.toml.pushpool-tmp");
            std::fs::write(&leftover, "half a file").unwrap();
            std::fs::set_permissions(&leftover, std::fs::Permissions::from_mode(0o644)).unwrap();
            let profile = ProfileFile { path: dir.path().join("profiles.toml"), active: "default".into() };
            set_profile_value(&profile, BUILD_NAMESPACE_KEY, "ns").unwrap();
            assert_eq!(mode(&profile.path), 0o600);
            assert!(!leftover.exists());
        }
    }

    #[test]
    fn malformed_file_is_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profiles.toml");
        std::fs::write(&path, "active = [\n").unwrap();
        let profile = ProfileFile { path: path.clone(), active: "default".into() };
        assert!(set_profile_value(&profile, BUILD_NAMESPACE_KEY, "ns").is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "active = [\n");
    }
}
