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
use crate::clouds::Scope;
use crate::request::{PoolMode, PoolRequest, read_base_job_template};
use crate::error::{Error, Result};

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
/// missing, its job variables filled when present).
pub fn read_pools_file(path: &Path) -> Result<Vec<Target>> {
    let what = || format!("pools file {}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| Error::usage(what(), e.to_string()))?;
    let file: PoolsFile = toml_edit::de::from_str(&text)
        .map_err(|e| Error::usage(what(), e.message().to_owned()).fix("see the pools file format in the README"))?;
    if file.pools.is_empty() {
        return Err(Error::usage(what(), "declares no pool").fix("add a [[pool]] table with a name and a type"));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    file.pools
        .into_iter()
        .map(|entry| {
            let mut request = PoolRequest::new(entry.name, entry.pool_type, PoolMode::Ensure)
                .with_image_registry(entry.image_registry.as_deref())
                .with_worker(entry.worker, entry.worker_image.as_deref(), entry.worker_api_url.as_deref());
            request.base_job_template = entry.base_job_template.map(|t| read_base_job_template(&dir.join(t))).transpose()?;
            Ok(Target { request, names: entry.set, scope: Scope { region: entry.region, project: entry.project, subscription: entry.subscription } })
        })
        .collect()
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
        assert_eq!(targets[3].scope, Scope { region: Some("europe-west1".into()), project: Some("my-project".into()), subscription: None });
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
}
