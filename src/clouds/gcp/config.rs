//! The project and region of a Cloud Run pool, found as `gcloud` finds them, without gcloud.
//!
//! The rules are gcloud's own (`googlecloudsdk/core/config.py` and `properties.py`):
//!
//! 1. The configuration directory is `CLOUDSDK_CONFIG`, else `%APPDATA%\gcloud` on Windows,
//!    else `~/.config/gcloud`.
//! 2. The active configuration is `CLOUDSDK_ACTIVE_CONFIG_NAME`, else the name written in the
//!    directory's `active_config` file, else `default`; its properties are the INI file
//!    `configurations/config_<name>` (a missing file has none).
//! 3. A property's environment variable wins over the file: `CLOUDSDK_CORE_PROJECT` over
//!    `[core] project`, `CLOUDSDK_RUN_REGION` over `[run] region`. pushpool also takes
//!    `GOOGLE_CLOUD_PROJECT`, which Google's client libraries read, after gcloud's variable.
//!
//! A command-line `--project` or `--region` wins over all of these. Without a project the run
//! stops before any call; the region falls back to `us-central1`, as Prefect's provisioner does.

use std::path::PathBuf;

use ini::Ini;

use crate::error::{Error, Result};
use crate::prefect::settings::{Env, home_dir};

/// The region when nothing names one: Prefect's provisioner's default.
pub const DEFAULT_REGION: &str = "us-central1";

/// Where a setting's value came from, for the plan header and errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The command line or the pools file.
    Flag,
    /// An environment variable.
    Variable(&'static str),
    /// A property of a gcloud configuration file.
    Configuration { name: String, property: &'static str },
    /// pushpool's default.
    Default,
}

impl Source {
    /// The source in words: "--project", "CLOUDSDK_CORE_PROJECT", "gcloud configuration 'default' (core/project)".
    pub fn describe(&self, flag: &str) -> String {
        match self {
            Source::Flag => format!("--{flag}"),
            Source::Variable(name) => (*name).to_owned(),
            Source::Configuration { name, property } => format!("gcloud configuration '{name}' ({property})"),
            Source::Default => "the default".to_owned(),
        }
    }
}

/// The project and region a run works in, and where each came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The project id.
    pub project: String,
    /// Where the project id came from.
    pub project_source: Source,
    /// The region of the repository and of the flow runs.
    pub region: String,
    /// Where the region came from.
    pub region_source: Source,
}

/// gcloud's configuration directory (rule 1).
pub fn config_dir(env: &dyn Env) -> Option<PathBuf> {
    if let Some(dir) = env.var("CLOUDSDK_CONFIG") {
        return Some(PathBuf::from(dir));
    }
    if cfg!(windows) {
        return env.var("APPDATA").map(|appdata| PathBuf::from(appdata).join("gcloud"));
    }
    home_dir(env).map(|home| home.join(".config").join("gcloud"))
}

/// The active configuration's name and properties (rule 2).
fn active_configuration(env: &dyn Env) -> Result<(String, Option<Ini>)> {
    let dir = config_dir(env);
    let name = match env.var("CLOUDSDK_ACTIVE_CONFIG_NAME") {
        Some(name) => name,
        None => dir
            .as_ref()
            .and_then(|dir| std::fs::read_to_string(dir.join("active_config")).ok())
            .map(|text| text.trim().to_owned())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "default".to_owned()),
    };
    let Some(path) = dir.map(|dir| dir.join("configurations").join(format!("config_{name}"))) else {
        return Ok((name, None));
    };
    match Ini::load_from_file(&path) {
        Ok(ini) => Ok((name, Some(ini))),
        Err(ini::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok((name, None)),
        Err(e) => Err(Error::usage(format!("gcloud configuration {}", path.display()), format!("cannot be read: {e}"))
            .fix("fix or delete the file (`gcloud config configurations list` shows the configurations), or pass --project and --region")),
    }
}

/// Resolves the project and region: `project` and `region` from the command line first.
pub fn resolve(env: &dyn Env, project: Option<&str>, region: Option<&str>) -> Result<Placement> {
    let (name, ini) = active_configuration(env)?;
    let property = |section: &str, key: &'static str| {
        let value = ini.as_ref()?.section(Some(section))?.get(key)?.trim().to_owned();
        (!value.is_empty()).then_some(value)
    };
    let configuration = |property: &'static str| Source::Configuration { name: name.clone(), property };
    let variable = |names: &[&'static str]| names.iter().find_map(|n| env.var(n).map(|value| (value, Source::Variable(n))));

    let project = match project {
        Some(project) => Some((project.to_owned(), Source::Flag)),
        None => variable(&["CLOUDSDK_CORE_PROJECT", "GOOGLE_CLOUD_PROJECT"]).or_else(|| property("core", "project").map(|p| (p, configuration("core/project")))),
    };
    let Some((project, project_source)) = project else {
        return Err(Error::usage(
            "Google Cloud project",
            format!("none is set: no --project, CLOUDSDK_CORE_PROJECT or GOOGLE_CLOUD_PROJECT, and the gcloud configuration '{name}' has no core/project"),
        )
        .fix("pass --project <id>, or set it once for gcloud: `gcloud config set project <id>`"));
    };
    check_project_id(&project, &project_source)?;
    let (region, region_source) = match region {
        Some(region) => (region.to_owned(), Source::Flag),
        None => variable(&["CLOUDSDK_RUN_REGION"])
            .or_else(|| property("run", "region").map(|r| (r, configuration("run/region"))))
            .unwrap_or_else(|| (DEFAULT_REGION.to_owned(), Source::Default)),
    };
    check_region(&region, &region_source)?;
    Ok(Placement { project, project_source, region, region_source })
}

/// A project id follows [`is_google_id`]. Checked before any call, so that a typo is named as such.
fn check_project_id(project: &str, source: &Source) -> Result<()> {
    if is_google_id(project) {
        return Ok(());
    }
    Err(Error::usage(
        format!("Google Cloud project '{project}' (from {})", source.describe("project")),
        "is not a project id: 6 to 30 lowercase letters, digits or hyphens, starting with a letter",
    )
    .fix("pass the project's id (not its name or number): `gcloud projects list` shows it"))
}

/// Google's rule for project ids and service account ids alike: 6 to 30 lowercase letters,
/// digits and hyphens, starting with a letter and not ending with a hyphen.
pub fn is_google_id(id: &str) -> bool {
    (6..=30).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A region is lowercase letters, digits and hyphens, like `us-central1`.
fn check_region(region: &str, source: &Source) -> Result<()> {
    let valid = region.contains('-') && region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        return Ok(());
    }
    Err(Error::usage(format!("Google Cloud region '{region}' (from {})", source.describe("region")), "is not a region name")
        .fix("pass a region such as us-central1 (`gcloud run regions list` lists them)"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::prefect::settings::MapEnv;

    fn gcloud_dir(active: Option<&str>, configs: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("configurations")).unwrap();
        if let Some(active) = active {
            std::fs::write(dir.path().join("active_config"), active).unwrap();
        }
        for (name, text) in configs {
            std::fs::write(dir.path().join("configurations").join(format!("config_{name}")), text).unwrap();
        }
        dir
    }

    fn env(dir: &tempfile::TempDir, extra: &[(&'static str, &str)]) -> MapEnv {
        let mut vars = HashMap::from([("CLOUDSDK_CONFIG", dir.path().display().to_string())]);
        vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        MapEnv(vars)
    }

    #[test]
    fn the_active_configuration_file_gives_project_and_region() {
        let dir = gcloud_dir(
            Some("work\n"),
            &[("default", "[core]\nproject = home-project\n"), ("work", "[core]\naccount = a@b.c\nproject = work-project\n\n[run]\nregion = europe-west1\n")],
        );
        let placement = resolve(&env(&dir, &[]), None, None).unwrap();
        assert_eq!(placement.project, "work-project");
        assert_eq!(placement.project_source, Source::Configuration { name: "work".into(), property: "core/project" });
        assert_eq!((placement.region.as_str(), &placement.region_source), ("europe-west1", &Source::Configuration { name: "work".into(), property: "run/region" }));
        // CLOUDSDK_ACTIVE_CONFIG_NAME picks another configuration; without a region the default applies.
        let placement = resolve(&env(&dir, &[("CLOUDSDK_ACTIVE_CONFIG_NAME", "default")]), None, None).unwrap();
        assert_eq!((placement.project.as_str(), placement.region.as_str(), placement.region_source), ("home-project", DEFAULT_REGION, Source::Default));
    }

    #[test]
    fn flags_win_over_variables_which_win_over_the_file() {
        let dir = gcloud_dir(None, &[("default", "[core]\nproject = file-project\n[run]\nregion = asia-east1\n")]);
        let vars = [("CLOUDSDK_CORE_PROJECT", "env-project"), ("GOOGLE_CLOUD_PROJECT", "other-project"), ("CLOUDSDK_RUN_REGION", "europe-west4")];
        let placement = resolve(&env(&dir, &vars), None, None).unwrap();
        assert_eq!((placement.project.as_str(), placement.project_source), ("env-project", Source::Variable("CLOUDSDK_CORE_PROJECT")));
        assert_eq!(placement.region, "europe-west4");
        let placement = resolve(&env(&dir, &[("GOOGLE_CLOUD_PROJECT", "other-project")]), None, None).unwrap();
        assert_eq!(placement.project, "other-project");
        let placement = resolve(&env(&dir, &vars), Some("flag-project"), Some("us-east1")).unwrap();
        assert_eq!((placement.project.as_str(), placement.region.as_str()), ("flag-project", "us-east1"));
    }

    #[test]
    fn no_project_and_bad_ids_are_named_with_the_fix() {
        let dir = gcloud_dir(None, &[]);
        let error = resolve(&env(&dir, &[]), None, None).unwrap_err();
        assert!(error.cause.contains("gcloud configuration 'default' has no core/project"), "{}", error.cause);
        assert!(error.fix.unwrap().contains("--project"));
        let error = resolve(&env(&dir, &[]), Some("My Project"), None).unwrap_err();
        assert!(error.what.contains("'My Project' (from --project)"), "{}", error.what);
        assert!(resolve(&env(&dir, &[]), Some("ok-project"), Some("us central")).is_err());
    }

    #[test]
    fn a_malformed_configuration_file_is_an_error_naming_it() {
        let dir = gcloud_dir(None, &[("default", "[core\nproject = x\n")]);
        let error = resolve(&env(&dir, &[]), None, None).unwrap_err();
        assert!(error.what.contains("config_default"), "{}", error.what);
    }
}
