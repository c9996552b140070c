//! Blueprints: the resource graph of each pool type, as data in `plans/`.
//!
//! A blueprint lists the nodes a pool type needs, their default names, what each waits for,
//! and which job variables their attributes feed. The plan, the summary, tagging and (later)
//! teardown all come from this one description. They are embedded in the binary.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::engine::reference::referenced_nodes;
use crate::error::{Error, Result};

/// The embedded blueprints, one per file in `plans/`.
const BLUEPRINTS: &[(&str, &str)] = &[("ecs-push.toml", include_str!("../plans/ecs-push.toml"))];

/// A pool type's resource graph, before names are resolved for a pool.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Blueprint {
    /// The pool types this blueprint provisions, e.g. `ecs:push` and its hybrid twin `ecs`.
    pub types: Vec<String>,
    /// The cloud whose context the nodes use ("aws").
    pub cloud: String,
    /// The Prefect worker type whose default base job template the pool starts from.
    pub template_type: String,
    /// The nodes.
    #[serde(rename = "node")]
    pub nodes: Vec<NodeSpec>,
    /// The image registry Docker is logged into after a successful apply.
    pub registry: Option<Registry>,
}

/// One node of a blueprint.
#[derive(Debug, Clone, Deserialize)]
pub struct NodeSpec {
    /// Unique id within the blueprint, used by `after`, references and `--set`.
    pub id: String,
    /// `<system>.<resource>`, which selects the implementation.
    pub kind: String,
    /// Default name; `{pool}` is replaced by the pool's name. Kinds without their own name
    /// (an access key) leave it out.
    pub name: Option<String>,
    /// What the resource is for, shown in the summary.
    pub says: String,
    /// Nodes this one waits for (references in its data are added automatically).
    #[serde(default)]
    pub after: Vec<String>,
    /// Kind-specific settings.
    #[serde(flatten)]
    pub params: Map<String, Value>,
}

/// The image registry a pool type provisions.
#[derive(Debug, Clone, Deserialize)]
pub struct Registry {
    /// A reference to the registry host Docker logs in to, e.g. "@repository.registry".
    pub host: Value,
    /// A reference to the repository images are pushed to, e.g. "@repository.uri".
    pub repository: Value,
}

impl Blueprint {
    /// The blueprint that provisions `pool_type`, if any.
    pub fn for_type(pool_type: &str) -> Result<Option<Self>> {
        for (file, text) in BLUEPRINTS {
            let blueprint = Self::parse(file, text)?;
            if blueprint.types.iter().any(|t| t == pool_type) {
                return Ok(Some(blueprint));
            }
        }
        Ok(None)
    }

    /// Every embedded blueprint.
    pub fn all() -> Result<Vec<Self>> {
        BLUEPRINTS.iter().map(|(file, text)| Self::parse(file, text)).collect()
    }

    /// Every pool type some blueprint provisions.
    pub fn supported_types() -> Vec<String> {
        BLUEPRINTS
            .iter()
            .filter_map(|(file, text)| Self::parse(file, text).ok())
            .flat_map(|b| b.types)
            .collect()
    }

    /// Parses a blueprint and adds every node its data references to the node's `after`.
    pub fn parse(file: &str, text: &str) -> Result<Self> {
        let mut blueprint: Self = toml_edit::de::from_str(text)
            .map_err(|e| Error::usage(format!("blueprint {file}"), e.to_string()))?;
        let ids: Vec<String> = blueprint.nodes.iter().map(|n| n.id.clone()).collect();
        for node in &mut blueprint.nodes {
            let params = Value::Object(node.params.clone());
            for referenced in referenced_nodes(&params) {
                if ids.contains(&referenced) && !node.after.contains(&referenced) {
                    node.after.push(referenced);
                }
            }
        }
        Ok(blueprint)
    }

    /// Resolves node names for `pool`, applying `overrides` (node id → name), which must
    /// name existing nodes.
    pub fn names(&self, pool: &str, overrides: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
        for id in overrides.keys() {
            if !self.nodes.iter().any(|n| &n.id == id && n.name.is_some()) {
                let named: Vec<&str> =
                    self.nodes.iter().filter(|n| n.name.is_some()).map(|n| n.id.as_str()).collect();
                return Err(Error::usage(format!("--set {id}=..."), "no such resource in this pool type")
                    .fix(format!("use one of: {}", named.join(", "))));
            }
        }
        Ok(self
            .nodes
            .iter()
            .filter_map(|n| {
                let name = overrides.get(&n.id).cloned().or_else(|| n.name.as_ref().map(|t| t.replace("{pool}", pool)))?;
                Some((n.id.clone(), name))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_blueprint_parses_and_references_existing_nodes() {
        for (file, text) in BLUEPRINTS {
            let blueprint = Blueprint::parse(file, text).unwrap();
            let ids: Vec<&str> = blueprint.nodes.iter().map(|n| n.id.as_str()).collect();
            for node in &blueprint.nodes {
                for dep in &node.after {
                    assert!(ids.contains(&dep.as_str()), "{file}: {} waits for unknown {dep}", node.id);
                }
            }
        }
    }

    #[test]
    fn ecs_pool_waits_for_every_resource_its_job_variables_name() {
        let blueprint = Blueprint::for_type("ecs:push").unwrap().unwrap();
        let pool = blueprint.nodes.iter().find(|n| n.id == "pool").unwrap();
        for dep in ["credentials", "cluster", "vpc", "execution_role", "subnets", "security_group", "route_table"] {
            assert!(pool.after.iter().any(|a| a == dep), "pool must wait for {dep}");
        }
    }

    #[test]
    fn names_take_the_pool_name_and_overrides() {
        let blueprint = Blueprint::for_type("ecs").unwrap().unwrap();
        let overrides = BTreeMap::from([("cluster".to_string(), "team-cluster".to_string())]);
        let names = blueprint.names("my-pool", &overrides).unwrap();
        assert_eq!(names["credentials"], "my-pool-aws-credentials");
        assert_eq!(names["cluster"], "team-cluster");
        assert_eq!(names["user"], "prefect-ecs-user");

        let bad = BTreeMap::from([("clustr".to_string(), "x".to_string())]);
        let error = blueprint.names("my-pool", &bad).unwrap_err();
        assert!(error.fix.unwrap().contains("cluster"));
    }
}
