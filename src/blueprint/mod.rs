//! Blueprints: the resource graph of each pool type, as data in `plans/`.
//!
//! A blueprint lists the clouds a pool type needs, the nodes it builds, their default names,
//! what each waits for, and which job variables their attributes feed. The plan, the summary,
//! tagging and teardown all come from this one description. They are embedded in the binary
//! and checked when parsed: each node's settings against its kind ([`kinds`]), every node a
//! setting, `after` or `@node.attr` reference names against the blueprint's nodes and clouds.
//!
//! An add-on (`addon = "image-registry=ecr"`, chosen by a flag such as `--image-registry ecr`)
//! adds clouds, nodes, a registry and guides to the blueprint of the types it lists, replaces
//! nodes of the same id and takes out those it `removes`: the pool type stays one blueprint,
//! and the combination is checked as a whole, like any blueprint. A node `only_with` a context
//! attribute (`prefect.api_key`) is left out of a run without it. What refers to a node left
//! out goes with it: a job variable, a data field, an `after`.

pub mod kinds;

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Map, Value};

pub use kinds::{Kind, NodeId};

use crate::engine::reference::referenced_nodes;
use crate::error::{Error, Result};
use crate::request::block_name_for;

/// The contexts every blueprint may name besides its clouds: `prefect` (api_url, and api_key
/// when there is one) and `worker` (pool, image and api_url of a worker pushpool runs).
pub const CONTEXTS: [&str; 2] = ["prefect", "worker"];

/// The embedded blueprints, one per file in `plans/`.
const BLUEPRINTS: &[(&str, &str)] = &[
    ("ecs-push.toml", include_str!("../../plans/ecs-push.toml")),
    ("modal-push.toml", include_str!("../../plans/modal-push.toml")),
    ("coiled-push.toml", include_str!("../../plans/coiled-push.toml")),
    ("cloud-run-push.toml", include_str!("../../plans/cloud-run-push.toml")),
    ("aci-push.toml", include_str!("../../plans/aci-push.toml")),
    ("modal-push-ecr.toml", include_str!("../../plans/modal-push-ecr.toml")),
    ("ecs-worker.toml", include_str!("../../plans/ecs-worker.toml")),
];

/// A pool type's resource graph, before names are resolved for a pool.
#[derive(Debug, Clone)]
pub struct Blueprint {
    /// The pool types this blueprint provisions, e.g. `ecs:push` and its hybrid twin `ecs`.
    pub types: Vec<String>,
    /// The clouds whose contexts the nodes use (and whose attributes `@cloud.attr` names); a
    /// run connects to these and no other.
    pub clouds: Vec<String>,
    /// The Prefect worker type whose default base job template the pool starts from, when it
    /// is not the pool type without `:push` (see [`Blueprint::template_type_for`]).
    pub template_type: Option<String>,
    /// The nodes.
    pub nodes: Vec<NodeSpec>,
    /// The image registry Docker is logged into after a successful apply.
    pub registry: Option<Registry>,
    /// What the report says to do next, after a successful apply.
    pub guides: Vec<Guide>,
    /// The add-ons applied, as named on the command line ("image-registry=ecr"), with what each
    /// is for: an error connecting to a cloud an add-on brought says which part needs it.
    pub addons: Vec<(String, AddonUse)>,
}

/// What an add-on brings, for errors and the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddonUse {
    /// What it is for, in words.
    pub says: String,
    /// The clouds it brings that the pool type alone does not need.
    pub clouds: Vec<String>,
    /// What the nodes it takes out of the pool type are for, in words ("IAM user whose key ...").
    pub removes: Vec<String>,
}

/// A step the report prints after a successful apply: a `prefect.yaml` fragment, the command
/// that starts a worker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guide {
    /// What it is, in a line.
    pub title: String,
    /// The text. `{pool}`, `{type}` and `{@node.attr}` stand for the pool's name, its type and
    /// an attribute after apply, put in as JSON strings (which YAML and shells read as they are).
    pub text: String,
    /// The pool types it is for; every type of the blueprint when empty.
    #[serde(default)]
    pub types: Vec<String>,
    /// Add-ons that make it moot (a worker pushpool runs): not shown with any of them.
    #[serde(default)]
    pub unless: Vec<String>,
}

/// One node of a blueprint.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Unique id within the blueprint, used by `after`, references and `--set`.
    pub id: String,
    /// Default name; `{pool}` is replaced by the pool's name. Kinds without their own name
    /// (an access key) leave it out.
    pub name: Option<String>,
    /// What the resource is for, shown in the summary.
    pub says: String,
    /// Nodes this one waits for: those listed, plus every node its settings and data name.
    pub after: Vec<String>,
    /// The kind and its settings.
    pub kind: Kind,
}

/// The image registry a pool type provisions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// A reference to the registry host Docker logs in to, e.g. "@repository.registry".
    pub host: Value,
    /// A reference to the repository images are pushed to, e.g. "@repository.uri".
    pub repository: Value,
}

impl Guide {
    /// The text with `{pool}`, `{type}` and each `{@node.attr}` put in as JSON strings;
    /// `lookup` gives an attribute's value. One it lacks reads `<node.attr: not known>`.
    pub fn render(&self, pool: &str, pool_type: &str, lookup: impl Fn(&str, &str) -> Option<Value>) -> String {
        let quoted = |value: Value| match value {
            Value::String(_) => value.to_string(),
            other => Value::String(other.to_string()).to_string(),
        };
        let mut text = self.text.replace("{pool}", &quoted(Value::from(pool))).replace("{type}", &quoted(Value::from(pool_type)));
        for (node, attr) in guide_references(&self.text) {
            let value = lookup(node, attr).map_or_else(|| format!("<{node}.{attr}: not known>"), quoted);
            text = text.replace(&format!("{{@{node}.{attr}}}"), &value);
        }
        text
    }
}

/// The command-line flag that asks for `addon`: `--image-registry ecr` for `image-registry=ecr`.
pub fn addon_flag(addon: &str) -> String {
    addon.split_once('=').map_or(format!("--{addon}"), |(flag, value)| format!("--{flag} {value}"))
}

/// The `{@node.attr}` references of a guide's text, as (node, attr).
fn guide_references(text: &str) -> Vec<(&str, &str)> {
    text.split("{@").skip(1).filter_map(|rest| rest.split_once('}')?.0.split_once('.')).collect()
}

/// The file's shape; nodes are checked against their kinds afterwards. An add-on's file has
/// `addon` and `says`, and no `template_type`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBlueprint {
    addon: Option<String>,
    says: Option<String>,
    #[serde(default)]
    removes: Vec<String>,
    types: Vec<String>,
    #[serde(default)]
    clouds: Vec<String>,
    template_type: Option<String>,
    #[serde(rename = "node", default)]
    nodes: Vec<RawNode>,
    registry: Option<Registry>,
    #[serde(rename = "guide", default)]
    guides: Vec<Guide>,
}

impl RawBlueprint {
    fn read(file: &str, text: &str) -> Result<Self> {
        toml_edit::de::from_str(text).map_err(|e| Error::usage(format!("blueprint {file}"), e.message().to_owned()))
    }

    /// Adds `addon`'s clouds, nodes (one with a node's id replaces it), registry and guides,
    /// and takes out the nodes it removes.
    fn add(&mut self, file: &str, addon: RawBlueprint) -> Result<AddonUse> {
        if let (Some(_), Some(_)) = (&self.registry, &addon.registry) {
            return Err(Error::usage(format!("blueprint {file}"), "adds a registry to a pool type that has one"));
        }
        if let Some(missing) = addon.removes.iter().find(|id| !self.nodes.iter().any(|n| &n.id == *id)) {
            return Err(Error::usage(format!("blueprint {file}"), format!("removes '{missing}', which the pool type does not have")));
        }
        let clouds: Vec<String> = addon.clouds.into_iter().filter(|c| !self.clouds.contains(c)).collect();
        self.clouds.extend(clouds.iter().cloned());
        let removes = self.nodes.iter().filter(|n| addon.removes.contains(&n.id)).map(|n| n.says.clone()).collect();
        self.remove(&addon.removes);
        for node in addon.nodes {
            match self.nodes.iter_mut().find(|n| n.id == node.id) {
                Some(replaced) => *replaced = node,
                None => self.nodes.push(node),
            }
        }
        self.registry = self.registry.take().or(addon.registry);
        self.guides.extend(addon.guides);
        Ok(AddonUse { says: addon.says.unwrap_or_default(), clouds, removes })
    }

    /// Leaves out the nodes `only_with` an attribute that `present` lacks.
    fn keep_present(&mut self, present: &dyn Fn(&str) -> bool) {
        let absent: Vec<String> = self.nodes.iter().filter(|n| n.only_with.as_deref().is_some_and(|attr| !present(attr))).map(|n| n.id.clone()).collect();
        self.remove(&absent);
    }

    /// Takes out the nodes `ids`, and with them every `after` entry, setting and data field
    /// (a job variable, an environment variable) that refers to one of them.
    fn remove(&mut self, ids: &[String]) {
        if ids.is_empty() {
            return;
        }
        let names_removed = |value: &Value| referenced_nodes(value).iter().any(|node| ids.contains(node));
        self.nodes.retain(|n| !ids.contains(&n.id));
        for node in &mut self.nodes {
            node.after.retain(|id| !ids.contains(id));
            node.settings.retain(|_, value| !(value.is_string() && names_removed(value)));
            for value in node.settings.values_mut() {
                if let Value::Object(fields) = value {
                    fields.retain(|_, field| !names_removed(field));
                }
            }
        }
    }
}

/// A node's common fields; the rest are the kind and its settings.
#[derive(Deserialize)]
struct RawNode {
    id: String,
    name: Option<String>,
    says: String,
    #[serde(default)]
    after: Vec<String>,
    only_with: Option<String>,
    #[serde(flatten)]
    settings: Map<String, Value>,
}

impl Blueprint {
    /// The blueprint that provisions `pool_type`, if any, with every node.
    pub fn for_type(pool_type: &str) -> Result<Option<Self>> {
        Self::for_pool(pool_type, &[], &|_| true)
    }

    /// The blueprint that provisions `pool_type` with `addons` ("image-registry=ecr"), if the
    /// type has one, without the nodes `only_with` an attribute `present` says is absent; an
    /// add-on the type lacks is an error that lists those it has.
    pub fn for_pool(pool_type: &str, addons: &[String], present: &dyn Fn(&str) -> bool) -> Result<Option<Self>> {
        let raw: Vec<(&str, RawBlueprint)> = BLUEPRINTS.iter().map(|(file, text)| Ok((*file, RawBlueprint::read(file, text)?))).collect::<Result<_>>()?;
        let serves = |b: &RawBlueprint| b.types.iter().any(|t| t == pool_type);
        let (mut bases, mut extras): (Vec<_>, Vec<_>) = raw.into_iter().partition(|(_, b)| b.addon.is_none());
        let Some(at) = bases.iter().position(|(_, b)| serves(b)) else { return Ok(None) };
        let (file, mut base) = bases.swap_remove(at);
        let mut used = Vec::new();
        for name in addons {
            let Some(at) = extras.iter().position(|(_, b)| serves(b) && b.addon.as_deref() == Some(name.as_str())) else {
                let offered: Vec<String> = extras.iter().filter(|(_, b)| serves(b)).filter_map(|(_, b)| b.addon.clone()).collect();
                let flag = addon_flag(name);
                let fix = match offered.is_empty() {
                    true => format!("{pool_type} pools take no add-on: leave {flag} out"),
                    false => format!("{pool_type} pools take: {}", offered.join(", ")),
                };
                return Err(Error::usage(flag, format!("is not available for {pool_type} pools")).fix(fix));
            };
            let (addon_file, addon) = extras.swap_remove(at);
            used.push((name.clone(), base.add(addon_file, addon)?));
        }
        base.keep_present(present);
        base.guides.retain(|g| (g.types.is_empty() || g.types.iter().any(|t| t == pool_type)) && !g.unless.iter().any(|a| addons.contains(a)));
        let mut blueprint = Self::check(file, base)?;
        blueprint.addons = used;
        Ok(Some(blueprint))
    }

    /// Whether some add-on serves `pool_type`.
    pub fn offers_addons(pool_type: &str) -> Result<bool> {
        for (file, text) in BLUEPRINTS {
            let raw = RawBlueprint::read(file, text)?;
            if raw.addon.is_some() && raw.types.iter().any(|t| t == pool_type) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Every embedded blueprint, each without add-ons.
    pub fn all() -> Result<Vec<Self>> {
        BLUEPRINTS.iter().filter_map(|(file, text)| Self::parse(file, text).transpose()).collect()
    }

    /// The pool types that use one of `clouds`, those that use it only through an add-on
    /// with the add-on's flag ("modal:push with --image-registry ecr"): what an error lists
    /// when a flag that chooses a place in those clouds is given for a type that uses none.
    pub fn types_using(clouds: &[&str]) -> Result<Vec<String>> {
        let mut types = Vec::new();
        for (file, text) in BLUEPRINTS {
            let raw = RawBlueprint::read(file, text)?;
            if !raw.clouds.iter().any(|c| clouds.contains(&c.as_str())) {
                continue;
            }
            let with = raw.addon.as_deref().map(|addon| format!(" with {}", addon_flag(addon))).unwrap_or_default();
            types.extend(raw.types.iter().map(|t| format!("{t}{with}")));
        }
        Ok(types)
    }

    /// Every pool type some blueprint provisions.
    pub fn supported_types() -> Vec<String> {
        Self::all().into_iter().flatten().flat_map(|b| b.types).collect()
    }

    /// Parses and checks a blueprint; None for an add-on's file (see [`Blueprint::for_pool`]).
    pub fn parse(file: &str, text: &str) -> Result<Option<Self>> {
        let raw = RawBlueprint::read(file, text)?;
        match raw.addon {
            Some(_) => Ok(None),
            None => Self::check(file, raw).map(Some),
        }
    }

    /// Checks a blueprint (add-ons added), and adds to each node's `after` every node its
    /// settings and data name.
    fn check(file: &str, raw: RawBlueprint) -> Result<Self> {
        let what = format!("blueprint {file}");
        let ids: Vec<&str> = raw.nodes.iter().map(|n| n.id.as_str()).collect();
        if let Some(twice) = ids.iter().enumerate().find_map(|(i, id)| ids[..i].contains(id).then_some(id)) {
            return Err(Error::usage(&what, format!("two nodes have the id '{twice}'")));
        }
        if let Some(taken) = ids.iter().find(|id| CONTEXTS.contains(id) || raw.clouds.iter().any(|c| c == *id)) {
            return Err(Error::usage(&what, format!("a node has the id '{taken}', which names a cloud or context")));
        }
        let known: BTreeSet<&str> = ids.iter().copied().chain(raw.clouds.iter().map(String::as_str)).chain(CONTEXTS).collect();
        let mut nodes = Vec::with_capacity(raw.nodes.len());
        for node in &raw.nodes {
            let at = || format!("{what}, node '{}'", node.id);
            let kind: Kind = serde_json::from_value(Value::Object(node.settings.clone())).map_err(|e| Error::usage(at(), e.to_string()))?;
            if kind.system() != "prefect" && !raw.clouds.iter().any(|c| c == kind.system()) {
                return Err(Error::usage(at(), format!("is of kind {} but the blueprint's clouds are [{}]", kind.name(), raw.clouds.join(", "))));
            }
            let mut after = node.after.clone();
            let settings = kind.node_settings().into_iter().map(|(_, id, waits)| (id.as_str().to_owned(), waits));
            let referenced = kind.templates().iter().flat_map(referenced_nodes).map(|id| (id, true)).collect::<Vec<_>>();
            let listed = node.after.iter().map(|id| (id.clone(), true));
            for (named, waits) in listed.chain(settings).chain(referenced) {
                if !known.contains(named.as_str()) {
                    return Err(Error::usage(at(), format!("names '{named}', which is neither a node nor a cloud of this blueprint")));
                }
                if waits && ids.contains(&named.as_str()) && !after.contains(&named) {
                    after.push(named);
                }
            }
            nodes.push(NodeSpec { id: node.id.clone(), name: node.name.clone(), says: node.says.clone(), after, kind });
        }
        let mut placed: Vec<&str> = Vec::new();
        while placed.len() < nodes.len() {
            let before = placed.len();
            for node in &nodes {
                if !placed.contains(&node.id.as_str()) && node.after.iter().all(|d| placed.contains(&d.as_str())) {
                    placed.push(&node.id);
                }
            }
            if placed.len() == before {
                let stuck: Vec<&str> = nodes.iter().map(|n| n.id.as_str()).filter(|id| !placed.contains(id)).collect();
                return Err(Error::usage(&what, format!("its nodes wait for each other in a cycle: {}", stuck.join(", "))));
            }
        }
        for reference in raw.registry.iter().flat_map(|r| [&r.host, &r.repository]).flat_map(referenced_nodes) {
            if !ids.contains(&reference.as_str()) {
                return Err(Error::usage(&what, format!("its registry names '{reference}', which is not a node")));
            }
        }
        for guide in &raw.guides {
            if let Some(named) = guide_references(&guide.text).into_iter().find(|(node, _)| !known.contains(node)) {
                return Err(Error::usage(&what, format!("guide '{}' names '{}', which is neither a node nor a cloud", guide.title, named.0)));
            }
        }
        Ok(Self { types: raw.types, clouds: raw.clouds, template_type: raw.template_type, nodes, registry: raw.registry, guides: raw.guides, addons: Vec::new() })
    }

    /// The worker type whose default base job template a pool of `pool_type` starts from: the
    /// blueprint's `template_type`, else the hybrid twin (`cloud-run-v2` for `cloud-run-v2:push`).
    pub fn template_type_for(&self, pool_type: &str) -> String {
        self.template_type.clone().unwrap_or_else(|| pool_type.trim_end_matches(":push").to_owned())
    }

    /// Whether the pool type builds resources in a cloud (not only Prefect objects).
    pub fn builds_in_clouds(&self) -> bool {
        self.nodes.iter().any(|n| n.kind.system() != "prefect")
    }

    /// The node with this id.
    pub fn node(&self, id: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Resolves node names for `pool`, applying `overrides` (node id → name), which must
    /// name existing nodes.
    pub fn names(&self, pool: &str, overrides: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
        for id in overrides.keys() {
            if !self.nodes.iter().any(|n| &n.id == id && n.name.is_some()) {
                let named: Vec<&str> = self.nodes.iter().filter(|n| n.name.is_some()).map(|n| n.id.as_str()).collect();
                return Err(Error::usage(format!("--set {id}=..."), "no such resource in this pool type").fix(format!("use one of: {}", named.join(", "))));
            }
        }
        // Prefect block names take lowercase letters, digits and dashes: a pool named `My_Pool`
        // gets the block `my-pool-aws-credentials`, shown in the plan, instead of a refusal.
        let block_stem = block_name_for(pool);
        Ok(self
            .nodes
            .iter()
            .filter_map(|n| {
                let stem = if matches!(n.kind, Kind::PrefectBlock(_)) { block_stem.as_str() } else { pool };
                let name = overrides.get(&n.id).cloned().or_else(|| n.name.as_ref().map(|t| t.replace("{pool}", stem)))?;
                Some((n.id.clone(), name))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_blueprint_parses_with_each_of_its_addons() {
        for (file, text) in BLUEPRINTS {
            let raw = RawBlueprint::read(file, text).unwrap_or_else(|e| panic!("{e}"));
            let Some(addon) = raw.addon else { continue };
            for pool_type in &raw.types {
                for present in [true, false] {
                    let blueprint = Blueprint::for_pool(pool_type, std::slice::from_ref(&addon), &|_| present).unwrap_or_else(|e| panic!("{file}: {e}")).unwrap();
                    assert_eq!(blueprint.addons[0].0, addon, "{file}");
                    assert!(!blueprint.addons[0].1.says.is_empty(), "{file} says what it is for");
                }
            }
        }
    }

    #[test]
    fn an_addon_the_type_lacks_is_refused_with_those_it_has() {
        let error = Blueprint::for_pool("ecs:push", &["image-registry=ecr".to_owned()], &|_| true).unwrap_err();
        assert_eq!(error.what, "--image-registry ecr");
        assert!(error.cause.contains("not available for ecs:push pools"), "{error}");
        let error = Blueprint::for_pool("modal:push", &["image-registry=gcr".to_owned()], &|_| true).unwrap_err();
        assert!(error.fix.unwrap().contains("image-registry=ecr"));
    }

    #[test]
    fn a_guide_puts_in_the_pool_and_attributes_as_json_strings() {
        let text = "pool: {pool} {type}\nimage: {@repository.uri}\ntag: \"{{ build.tag }}\"\nx: {@nothing.here}";
        let guide = Guide { title: "t".into(), text: text.into(), types: Vec::new(), unless: Vec::new() };
        let text = guide.render("my \"pool\"", "ecs", |node, attr| (node == "repository" && attr == "uri").then(|| Value::from("1.dkr.ecr/r")));
        assert_eq!(text, "pool: \"my \\\"pool\\\"\" \"ecs\"\nimage: \"1.dkr.ecr/r\"\ntag: \"{{ build.tag }}\"\nx: <nothing.here: not known>");
    }

    #[test]
    fn the_worker_replaces_the_user_and_its_key_and_without_an_api_key_has_no_secret() {
        let worker = ["worker".to_owned()];
        let with_key = Blueprint::for_pool("ecs", &worker, &|_| true).unwrap().unwrap();
        for gone in ["user", "access_key", "credentials"] {
            assert!(with_key.node(gone).is_none(), "{gone} is left out");
        }
        let Kind::PrefectWorkPool(pool) = &with_key.node("pool").unwrap().kind else { panic!() };
        assert!(!pool.job_variables.contains_key("aws_credentials") && pool.job_variables.contains_key("cluster"));
        let Kind::AwsIamPolicy(policy) = &with_key.node("policy").unwrap().kind else { panic!() };
        assert_eq!(policy.attach_to.as_str(), "worker_role", "the add-on's node replaced the type's");
        assert!(with_key.node("worker_task").unwrap().after.iter().any(|a| a == "api_key_access"));

        let without_key = Blueprint::for_pool("ecs", &worker, &|attr| attr != "prefect.api_key").unwrap().unwrap();
        assert!(without_key.node("api_key").is_none() && without_key.node("api_key_access").is_none());
        let Kind::AwsEcsTaskDefinition(task) = &without_key.node("worker_task").unwrap().kind else { panic!() };
        assert!(task.secrets.is_empty() && task.environment.contains_key("PREFECT_API_URL"));
        assert!(!without_key.node("worker_task").unwrap().after.iter().any(|a| a == "api_key_access"));

        let plain = Blueprint::for_type("ecs").unwrap().unwrap();
        assert!(plain.guides.iter().any(|g| g.text.contains("prefect worker start")), "a hybrid pool without --worker says how to start one");
        assert!(!with_key.guides.iter().any(|g| g.text.contains("prefect worker start")));
        for push in ["ecs:push", "cloud-run:push", "cloud-run-v2:push", "azure-container-instance:push"] {
            assert!(!Blueprint::for_type(push).unwrap().unwrap().guides.iter().any(|g| g.text.contains("prefect worker start")), "{push} needs none");
        }
        for (hybrid, package) in [("cloud-run", "prefect-gcp"), ("cloud-run-v2", "prefect-gcp"), ("azure-container-instance", "prefect-azure")] {
            let guides = Blueprint::for_type(hybrid).unwrap().unwrap().guides;
            let text = guides.iter().map(|g| g.render("p", hybrid, |_, _| None)).collect::<String>();
            assert!(text.contains(&format!("pip install {package}")) && text.contains(&format!("prefect worker start --pool \"p\" --type \"{hybrid}\"")), "{text}");
        }
    }

    #[test]
    fn every_embedded_blueprint_parses() {
        for (file, text) in BLUEPRINTS {
            let Some(blueprint) = Blueprint::parse(file, text).unwrap_or_else(|e| panic!("{e}")) else { continue };
            assert!(!blueprint.types.is_empty(), "{file}");
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
        let pool = blueprint.node("pool").unwrap();
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

        let derived = blueprint.names("Team_A Pool", &BTreeMap::new()).unwrap();
        assert_eq!(derived["credentials"], "team-a-pool-aws-credentials", "a block name Prefect accepts");
        assert_eq!(derived["pool"], "Team_A Pool", "the pool keeps its own name");

        let bad = BTreeMap::from([("clustr".to_string(), "x".to_string())]);
        let error = blueprint.names("my-pool", &bad).unwrap_err();
        assert!(error.fix.unwrap().contains("cluster"));
    }

    fn parse(nodes: &str) -> Result<Blueprint> {
        Blueprint::parse("test.toml", &format!("types = [\"t\"]\nclouds = [\"aws\"]\ntemplate_type = \"t\"\n{nodes}")).map(Option::unwrap)
    }

    #[test]
    fn a_misspelt_setting_is_refused_with_the_node_named() {
        let error = parse("[[node]]\nid = \"gw\"\nkind = \"aws.internet_gateway\"\nsays = \"x\"\nvcp = \"vpc\"\n").unwrap_err();
        assert!(error.what.contains("node 'gw'") && error.cause.contains("vcp"), "{error}");
        let error = parse("[[node]]\nid = \"x\"\nkind = \"aws.nothing\"\nsays = \"x\"\n").unwrap_err();
        assert!(error.cause.contains("aws.nothing"), "{error}");
    }

    #[test]
    fn a_reference_to_a_missing_node_is_an_error_not_dropped() {
        let error = parse("[[node]]\nid = \"gw\"\nkind = \"aws.internet_gateway\"\nsays = \"x\"\nvpc = \"vpc\"\n").unwrap_err();
        assert!(error.cause.contains("'vpc'"), "{error}");
        let block = "[[node]]\nid = \"b\"\nkind = \"prefect.block\"\nsays = \"x\"\nblock_type = \"t\"\nwhen_type_missing = \"x\"\ndata = { a = \"@key.id\" }\n";
        assert!(parse(block).unwrap_err().cause.contains("'key'"));
        let cloud = "[[node]]\nid = \"b\"\nkind = \"prefect.block\"\nsays = \"x\"\nblock_type = \"t\"\nwhen_type_missing = \"x\"\ndata = { a = \"@aws.region\" }\n";
        assert!(parse(cloud).unwrap().node("b").unwrap().after.is_empty(), "a cloud's attribute is no dependency");
        let after = "[[node]]\nid = \"v\"\nkind = \"aws.vpc\"\nsays = \"x\"\nafter = [\"nowhere\"]\n";
        assert!(parse(after).unwrap_err().cause.contains("'nowhere'"));
    }

    #[test]
    fn a_kind_of_a_cloud_the_blueprint_does_not_name_is_refused() {
        let text = "types = [\"t\"]\nclouds = []\ntemplate_type = \"t\"\n[[node]]\nid = \"v\"\nkind = \"aws.vpc\"\nsays = \"x\"\n";
        assert!(Blueprint::parse("t.toml", text).unwrap_err().cause.contains("clouds are []"));
        let guide = "types = [\"t\"]\nclouds = []\n[[guide]]\ntitle = \"g\"\ntext = \"{@nowhere.x}\"\n";
        assert!(Blueprint::parse("t.toml", guide).unwrap_err().cause.contains("guide 'g' names 'nowhere'"));
    }

    #[test]
    fn a_cycle_is_refused_when_parsed() {
        let nodes = "[[node]]\nid = \"a\"\nkind = \"aws.vpc\"\nsays = \"x\"\nafter = [\"b\"]\n[[node]]\nid = \"b\"\nkind = \"aws.vpc\"\nsays = \"x\"\nafter = [\"a\"]\n";
        assert!(parse(nodes).unwrap_err().cause.contains("cycle: a, b"));
    }

    #[test]
    fn settings_that_name_nodes_become_dependencies() {
        let blueprint =
            parse("[[node]]\nid = \"vpc\"\nkind = \"aws.vpc\"\nsays = \"x\"\n[[node]]\nid = \"sg\"\nkind = \"aws.security_group\"\nsays = \"x\"\nvpc = \"vpc\"\n").unwrap();
        assert_eq!(blueprint.node("sg").unwrap().after, ["vpc"]);
    }
}
