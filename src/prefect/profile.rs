//! Reads and writes settings of the active Prefect profile (the default Docker build namespace,
//! the default work pool), keeping every other line, comment and setting of `profiles.toml`.

use std::io::Write;
use std::path::Path;

use toml_edit::{DocumentMut, Item, Table};

use super::settings::{ProfileFile, read_profiles};
use crate::error::{Error, Result};


/// The value of `key` in the active profile, if set.
pub fn profile_value(profile: &ProfileFile, key: &str) -> Result<Option<String>> {
    let Some(document) = read_profiles(&profile.path)? else { return Ok(None) };
    Ok(document
        .get("profiles")
        .and_then(|p| p.get(&profile.active))
        .and_then(|p| p.get(key))
        .and_then(|v| v.as_str())
        .map(str::to_owned))
}

/// Sets `key` in the active profile, creating the file (mode 0600, as Prefect does) or the
/// profile's table when missing. The file is replaced atomically.
pub fn set_profile_value(profile: &ProfileFile, key: &str, value: &str) -> Result<()> {
    let what = || format!("Prefect profiles {}", profile.path.display());
    let mut document = read_profiles(&profile.path)?.unwrap_or_else(|| {
        let mut fresh = DocumentMut::new();
        fresh["active"] = toml_edit::value(profile.active.as_str());
        fresh
    });
    let profiles = document.entry("profiles").or_insert_with(|| {
        let mut table = Table::new();
        table.set_implicit(true);
        Item::Table(table)
    });
    let profiles = profiles
        .as_table_mut()
        .ok_or_else(|| Error::usage(what(), "`profiles` is not a table"))?;
    let active = profiles.entry(&profile.active).or_insert_with(|| Item::Table(Table::new()));
    let active = active
        .as_table_like_mut()
        .ok_or_else(|| Error::usage(what(), format!("profile '{}' is not a table", profile.active)))?;
    active.insert(key, toml_edit::value(value));
    write_atomically(&profile.path, document.to_string().as_bytes()).map_err(|e| Error::usage(what(), e.to_string()))
}

/// Writes `path` through a temporary file beside it, keeping the old file's permissions, or
/// 0600 for a new file.
fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mode = std::fs::metadata(path).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o600);
    let tmp = dir.join(format!(".{}.pushpool-tmp", path.file_name().unwrap_or_default().to_string_lossy()));
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// The setting Prefect 3 reads for `prefect deploy`'s image namespace.
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
        assert_eq!(
            written,
            original.to_owned() + "PREFECT_DEPLOYMENTS_DEFAULT_DOCKER_BUILD_NAMESPACE = \"123.dkr.ecr.us-east-1.amazonaws.com\"\n"
        );
        assert_eq!(profile_value(&profile, BUILD_NAMESPACE_KEY).unwrap().as_deref(), Some("123.dkr.ecr.us-east-1.amazonaws.com"));
    }

    #[test]
    fn creates_a_private_file_when_there_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let profile = ProfileFile { path: dir.path().join("home/profiles.toml"), active: "default".into() };
        assert_eq!(profile_value(&profile, BUILD_NAMESPACE_KEY).unwrap(), None);
        set_profile_value(&profile, BUILD_NAMESPACE_KEY, "ns").unwrap();
        let mode = std::fs::metadata(&profile.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let written = std::fs::read_to_string(&profile.path).unwrap();
        assert!(written.starts_with("active = \"default\"\n"), "{written}");
        assert_eq!(profile_value(&profile, BUILD_NAMESPACE_KEY).unwrap().as_deref(), Some("ns"));
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
