//! What the user asked of a pool (its name, type and mode), checked against Prefect's naming
//! rules before any call. A leaf module: the node kinds and the run both use it.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

/// Whether the run creates the pool or provisions for an existing one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolMode {
    /// `work-pool create`: the pool may not exist yet; an existing one that would change
    /// needs `overwrite`.
    Create {
        /// Replace an existing pool's template with the type's default one.
        overwrite: bool,
    },
    /// `work-pool provision-infra`: the pool must exist; its template is kept and its job
    /// variable defaults are filled.
    ProvisionInfra,
    /// `plan` and `apply`: the declared state. A missing pool is created; an existing one
    /// keeps its template and gets its job variable defaults filled.
    Ensure,
    /// `work-pool deprovision`: the pool and what pushpool built for it are torn down. The
    /// type is read from the pool, or given when the pool is already gone.
    Deprovision,
}

impl PoolMode {
    /// The mode's name in plan files.
    pub fn as_str(&self) -> &'static str {
        match self {
            PoolMode::Create { overwrite: false } => "create",
            PoolMode::Create { overwrite: true } => "create-overwrite",
            PoolMode::ProvisionInfra => "provision-infra",
            PoolMode::Ensure => "ensure",
            PoolMode::Deprovision => "deprovision",
        }
    }

    /// The mode named `name` in a plan file.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "create" => PoolMode::Create { overwrite: false },
            "create-overwrite" => PoolMode::Create { overwrite: true },
            "provision-infra" => PoolMode::ProvisionInfra,
            "ensure" => PoolMode::Ensure,
            "deprovision" => PoolMode::Deprovision,
            _ => return None,
        })
    }
}

/// The pool a run is for.
#[derive(Debug, Clone)]
pub struct PoolRequest {
    /// The pool's name.
    pub name: String,
    /// The pool's type, e.g. `ecs:push`.
    pub pool_type: String,
    /// Create or provision for an existing pool.
    pub mode: PoolMode,
    /// The base job template a new pool starts from instead of the type's default
    /// (`--base-job-template`); the provisioned defaults are filled into it.
    pub base_job_template: Option<Value>,
    /// Create the pool paused (`--paused`), as `prefect work-pool create` does.
    pub paused: bool,
    /// Make it the active profile's default work pool (`--set-as-default`).
    pub set_as_default: bool,
    /// Add-ons of the pool type's graph, as blueprints name them: `--image-registry ecr` is
    /// `image-registry=ecr`, `--worker` is `worker`. Sorted, each once.
    pub addons: Vec<String>,
    /// Settings of the add-ons, by flag name without dashes: `worker-image`, `worker-api-url`.
    pub options: BTreeMap<String, String>,
}

/// The settings each add-on takes (`--worker-image` is the `worker` add-on's).
pub const ADDON_OPTIONS: &[(&str, &str)] = &[("worker-image", "worker"), ("worker-api-url", "worker")];

impl PoolRequest {
    /// A request for pool `name` of `pool_type` in `mode`, with Prefect's defaults for the rest.
    pub fn new(name: impl Into<String>, pool_type: impl Into<String>, mode: PoolMode) -> Self {
        Self {
            name: name.into(),
            pool_type: pool_type.into(),
            mode,
            base_job_template: None,
            paused: false,
            set_as_default: false,
            addons: Vec::new(),
            options: BTreeMap::new(),
        }
    }

    /// Adds the `worker` add-on when `worker`, with the settings given.
    pub fn with_worker(mut self, worker: bool, image: Option<&str>, api_url: Option<&str>) -> Self {
        if worker {
            self.add_addons(["worker".to_owned()]);
        }
        for (option, value) in [("worker-image", image), ("worker-api-url", api_url)] {
            if let Some(value) = value {
                self.options.insert(option.to_owned(), value.to_owned());
            }
        }
        self
    }

    /// Checks that every setting belongs to an add-on asked for.
    pub fn check_options(&self) -> Result<()> {
        for option in self.options.keys() {
            let addon = ADDON_OPTIONS.iter().find(|(name, _)| name == option).map_or("", |(_, addon)| *addon);
            if !self.addons.iter().any(|a| a == addon) {
                return Err(Error::usage(format!("--{option}"), format!("is a setting of --{addon}, which work pool '{}' does not have", self.name))
                    .fix(format!("add --{addon}, or leave --{option} out")));
            }
        }
        Ok(())
    }

    /// Adds the add-on `--image-registry REGISTRY` asks for, if given.
    pub fn with_image_registry(mut self, registry: Option<&str>) -> Self {
        if let Some(registry) = registry {
            self.add_addons([format!("image-registry={registry}")]);
        }
        self
    }

    /// Adds `addons`, keeping them sorted and each once.
    pub fn add_addons(&mut self, addons: impl IntoIterator<Item = String>) {
        self.addons.extend(addons);
        self.addons.sort();
        self.addons.dedup();
    }
}

/// Reads a base job template file (`--base-job-template`): JSON with `job_configuration` and
/// `variables.properties`, as Prefect's own `work-pool create` takes.
pub fn read_base_job_template(path: &Path) -> Result<Value> {
    let what = || format!("base job template {}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| Error::unreadable(what(), &e))?;
    let template: Value = serde_json::from_str(&text).map_err(|e| {
        Error::usage(what(), format!("not JSON: {e}")).fix("pass a JSON template, e.g. from `prefect work-pool get-default-base-job-template --type TYPE > FILE`")
    })?;
    if template.pointer("/variables/properties").and_then(Value::as_object).is_none() || template.get("job_configuration").is_none() {
        return Err(Error::usage(what(), "has no `job_configuration` and `variables.properties`")
            .fix("start from the type's default: `prefect work-pool get-default-base-job-template --type TYPE > FILE`"));
    }
    Ok(template)
}

/// Checks a work pool name as the Prefect server does, so that the error comes before
/// anything is created rather than from the last call of a run.
pub fn check_pool_name(name: &str) -> Result<()> {
    let what = format!("work pool name '{name}'");
    if name.trim().is_empty() {
        return Err(Error::usage("work pool name", "is empty").fix("pass a name, e.g. `my-ecs-pool`"));
    }
    if let Some(c) = name.chars().find(|c| "/%&><".contains(*c)) {
        return Err(Error::usage(what, format!("contains '{c}'; Prefect refuses / % & > <")).fix("choose a name without those characters"));
    }
    if name.to_lowercase().starts_with("prefect") {
        return Err(Error::usage(what, "starts with 'prefect', which Prefect reserves").fix("choose another name, e.g. `my-ecs-pool`"));
    }
    Ok(())
}

/// Checks a block document name: Prefect accepts lowercase letters, digits and dashes.
pub fn check_block_name(name: &str, node: &str) -> Result<()> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Ok(());
    }
    Err(Error::usage(format!("block name '{name}'"), "Prefect block names take lowercase letters, digits and dashes only")
        .fix(format!("name the block with lowercase letters, digits and dashes: --set {node}=<name>")))
}

/// The stem of the block names of pool `pool`, valid as Prefect block names are (lowercase
/// letters, digits and dashes): a pool may be called `My-Pool` or `team_a pool`, its blocks
/// `my-pool-...` and `team-a-pool-...`. ASCII letters are lowercased and digits kept; every
/// other character (`_`, spaces, punctuation, letters outside ASCII) becomes a dash; runs of
/// dashes collapse into one and dashes at either end are dropped. A name with no ASCII letter
/// or digit at all (`___`, `池`) gives `pool`. Distinct pool names can share a stem (`My Pool`
/// and `my-pool`): the plan shows the derived name, and `--set ID=NAME` names a block apart.
pub fn block_name_for(pool: &str) -> String {
    let dashed: String = pool.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    let stem = dashed.split('-').filter(|part| !part.is_empty()).collect::<Vec<_>>().join("-");
    if stem.is_empty() { "pool".to_owned() } else { stem }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_names_follow_the_server_rules() {
        assert!(check_pool_name("my-ecs-pool").is_ok());
        assert!(check_pool_name("My Pool_1").is_ok(), "the server accepts spaces, capitals and underscores");
        for bad in ["", "  ", "a/b", "50%", "a&b", "a>b", "a<b", "prefect-pool", "Prefect"] {
            let error = check_pool_name(bad).unwrap_err();
            assert!(error.fix.is_some(), "{bad}: {error}");
        }
    }

    #[test]
    fn a_base_job_template_needs_its_two_sections() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tpl.json");
        std::fs::write(&path, r#"{"variables": {"properties": {"image": {}}}}"#).unwrap();
        assert!(read_base_job_template(&path).unwrap_err().fix.unwrap().contains("get-default-base-job-template"));
        std::fs::write(&path, r#"{"job_configuration": {}, "variables": {"properties": {"image": {}}}}"#).unwrap();
        assert!(read_base_job_template(&path).is_ok());
        std::fs::write(&path, "{").unwrap();
        assert!(read_base_job_template(&path).unwrap_err().cause.contains("not JSON"));
    }

    #[test]
    fn block_names_are_lowercase_digits_and_dashes() {
        assert!(check_block_name("my-pool-aws-credentials", "credentials").is_ok());
        let error = check_block_name("My_Pool-aws-credentials", "credentials").unwrap_err();
        assert!(error.fix.unwrap().contains("--set credentials="));
    }

    #[test]
    fn block_name_stems_follow_the_block_rules() {
        let cases = [
            ("my-ecs-pool", "my-ecs-pool"),
            ("My-Pool", "my-pool"),
            ("team_a pool", "team-a-pool"),
            ("  Team__A -- Pool 2 ", "team-a-pool-2"),
            ("-edge-", "edge"),
            ("café.pool", "caf-pool"),
            ("___", "pool"),
            ("池", "pool"),
            ("", "pool"),
        ];
        for (pool, stem) in cases {
            let derived = block_name_for(pool);
            assert_eq!(derived, stem, "{pool:?}");
            assert!(check_block_name(&format!("{derived}-aws-credentials"), "credentials").is_ok(), "{pool:?} gives {derived}");
        }
    }
}
