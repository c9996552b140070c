//! `pools.toml`: the pools of a repository, declared in one file, planned and applied together.
//!
//! ```toml
//! [[pool]]
//! name = "team-a"
//! type = "ecs:push"
//!
//! [[pool]]
//! name = "team-b"
//! type = "ecs:push"
//! region = "eu-west-1"                  # else the cloud's configured region
//! project = "my-project"                # Cloud Run pools: else gcloud's configured project
//! subscription = "<id or name>"         # ACI pools: else the Azure CLI's default subscription
//! profile = "team-b"                    # AWS pools: an AWS CLI profile (role_arn, SSO, keys...)
//! set = { cluster = "team-b-cluster" }   # resource names, as with --set
//!
//! [[pool]]
//! name = "team-i"
//! type = "modal:push"
//! image_registry = "ecr"                 # as --image-registry ecr
//!
//! [[pool]]
//! name = "team-w"
//! type = "ecs"
//! worker = true                          # as --worker; worker_image, worker_api_url as theirs
//!
//! [[pool]]
//! name = "team-m"
//! type = "modal:push"
//! base_job_template = "modal.json"        # relative to this file; else the type's default
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Target;
use super::check::{Spelling, TargetCheck};
use crate::clouds::Scope;
use crate::error::{Error, Result, position};
use crate::request::{PoolMode, PoolRequest, read_base_job_template};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolsFile {
    #[serde(rename = "pool", default)]
    pools: Vec<PoolEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolEntry {
    name: String,
    #[serde(rename = "type")]
    pool_type: String,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    subscription: Option<String>,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    base_job_template: Option<PathBuf>,
    #[serde(default)]
    image_registry: Option<String>,
    #[serde(default)]
    worker: bool,
    #[serde(default)]
    worker_image: Option<String>,
    #[serde(default)]
    worker_api_url: Option<String>,
}

/// The pools declared in `path`, each to be brought to its declared state (created when
/// missing, its job variables filled when present). Every pool is checked here, before any
/// call ([`TargetCheck`]); an error names the pool (its `name`, else its place in the file)
/// and, for the file's syntax and fields, the line and column.
pub fn read_pools_file(path: &Path) -> Result<Vec<Target>> {
    let what = || format!("pools file {}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| Error::unreadable(what(), &e))?;
    let file: PoolsFile = toml_edit::de::from_str(&text).map_err(|e| {
        let at = e.span().map(|span| located(&text, span.start)).unwrap_or_default();
        Error::usage(format!("{}{at}", what()), e.message().trim_end().to_owned()).fix("see the pools file format in the README")
    })?;
    if file.pools.is_empty() {
        return Err(Error::usage(what(), "declares no pool").fix("add a [[pool]] table with a name and a type"));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut check = TargetCheck::provisioning(true);
    file.pools
        .into_iter()
        .enumerate()
        .map(|(index, entry)| {
            let pool = format!("{}, pool '{}' (#{})", what(), entry.name, index + 1);
            let in_pool = |error: Error| Error { what: format!("{pool}: {}", error.what), ..error };
            let mut request = PoolRequest::new(entry.name, entry.pool_type, PoolMode::Ensure).with_image_registry(entry.image_registry.as_deref()).with_worker(
                entry.worker,
                entry.worker_image.as_deref(),
                entry.worker_api_url.as_deref(),
            );
            request.base_job_template = entry.base_job_template.map(|t| read_base_job_template(&dir.join(t))).transpose().map_err(in_pool)?;
            let target = Target {
                request,
                names: entry.set,
                scope: Scope { region: entry.region, project: entry.project, subscription: entry.subscription, profile: entry.profile },
            };
            check.check(&target, Spelling::Key).map_err(in_pool)?;
            Ok(target)
        })
        .collect()
}

/// Where byte `offset` of `text` is: the pool it is in when it is inside a `[[pool]]` table
/// (its `name`, else its number), the line and the column.
fn located(text: &str, offset: usize) -> String {
    format!("{}{}", pool_at(text, offset).map(|p| format!(", {p}")).unwrap_or_default(), position(text, offset))
}

/// The `[[pool]]` table that byte `offset` of `text` is in, as "pool 'NAME' (#N)" (or
/// "pool #N" when it has no name yet), if the file parses as TOML.
fn pool_at(text: &str, offset: usize) -> Option<String> {
    let document = toml_edit::Document::parse(text).ok()?;
    let pools = document.get("pool")?.as_array_of_tables()?;
    let (index, table) = pools.iter().enumerate().filter(|(_, t)| t.span().is_some_and(|s| s.start <= offset)).last()?;
    Some(match table.get("name").and_then(|n| n.as_str()) {
        Some(name) => format!("pool '{name}' (#{})", index + 1),
        None => format!("pool #{}", index + 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pools_with_regions_and_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pools.toml");
        std::fs::write(dir.path().join("m.json"), r#"{"job_configuration": {}, "variables": {"properties": {"x": {}}}}"#).unwrap();
        std::fs::write(&path, "[[pool]]\nname = \"a\"\ntype = \"ecs:push\"\n\n[[pool]]\nname = \"b\"\ntype = \"ecs\"\nregion = \"eu-west-1\"\nset = { cluster = \"c\" }\n\n[[pool]]\nname = \"m\"\ntype = \"modal:push\"\nbase_job_template = \"m.json\"\n\n[[pool]]\nname = \"g\"\ntype = \"cloud-run-v2:push\"\nproject = \"my-project\"\nregion = \"europe-west1\"\n\n[[pool]]\nname = \"i\"\ntype = \"modal:push\"\nimage_registry = \"ecr\"\n").unwrap();
        let targets = read_pools_file(&path).unwrap();
        assert_eq!(targets.len(), 5);
        assert_eq!(targets[4].request.addons, ["image-registry=ecr"]);
        assert_eq!(targets[3].scope, Scope { region: Some("europe-west1".into()), project: Some("my-project".into()), ..Scope::default() });
        assert!(targets[2].request.base_job_template.as_ref().unwrap().pointer("/variables/properties/x").is_some(), "read relative to the file");
        assert_eq!(targets[1].scope.region.as_deref(), Some("eu-west-1"));
        assert_eq!(targets[1].names["cluster"], "c");
        assert_eq!(targets[0].request.mode, PoolMode::Ensure);
    }

    #[test]
    fn unknown_keys_and_empty_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pools.toml");
        std::fs::write(&path, "[[pool]]\nname = \"a\"\ntype = \"ecs:push\"\nclustr = \"x\"\n").unwrap();
        assert!(read_pools_file(&path).unwrap_err().cause.contains("clustr"));
        std::fs::write(&path, "").unwrap();
        assert!(read_pools_file(&path).unwrap_err().cause.contains("no pool"));
    }

    #[test]
    fn errors_name_the_pool_and_where_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pools.toml");
        std::fs::write(&path, "[[pool]]\nname = \"a\"\ntype = \"ecs:push\"\n\n[[pool]]\nname = \"b\"\nregion = \"eu-west-1\"\n").unwrap();
        let error = read_pools_file(&path).unwrap_err();
        assert!(error.what.ends_with("pool 'b' (#2), line 5, column 1"), "{error}");
        assert!(error.cause.contains("missing field `type`"), "{error}");
        std::fs::write(&path, "[[pool]]\nname = \"a\"\ntype = ecs:push\n").unwrap();
        let error = read_pools_file(&path).unwrap_err();
        assert!(error.what.contains("line 3, column 8"), "{error}");
        std::fs::write(&path, "[[pool]]\nname = \"a\"\ntype = \"ecs:push\"\nsubscription = \"s\"\n").unwrap();
        let error = read_pools_file(&path).unwrap_err();
        assert!(error.what.contains("pool 'a' (#1): `subscription` s"), "{error}");
        let error = read_pools_file(&dir.path().join("missing.toml")).unwrap_err();
        assert!(error.fix.as_deref().unwrap().contains("check the path"), "{error}");
    }

    #[test]
    fn ten_thousand_pools_with_one_bad_entry_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pools.toml");
        let mut text: String = (0..10_000).map(|i| format!("[[pool]]\nname = \"p{i}\"\ntype = \"ecs:push\"\nregion = \"eu-west-1\"\n\n")).collect();
        text.push_str("[[pool]]\nname = \"last\"\ntype = \"ecs:push\"\nproject = \"x\"\n");
        std::fs::write(&path, text).unwrap();
        let started = std::time::Instant::now();
        let error = read_pools_file(&path).unwrap_err();
        assert!(error.what.contains("pool 'last' (#10001)"), "{error}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "took {:?}", started.elapsed());
    }
}
