//! The resource graph: nodes, what each depends on, and a checked order.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use super::attrs::Attrs;
use super::node::NodeRef;
use crate::error::{Error, Result};

/// What the plan and the console show of a node, whatever its kind.
#[derive(Debug, Clone, Serialize)]
pub struct NodeInfo {
    /// The node's id in the blueprint, e.g. "execution_role".
    pub id: String,
    /// The kind, `<system>.<resource>`, e.g. "aws.iam_role".
    pub kind: String,
    /// What kind of resource it is, in words: "IAM role".
    pub label: String,
    /// The resource's name as resolved for this pool.
    pub name: String,
    /// What the resource is for, in the blueprint's words.
    pub says: String,
    /// The ids of the nodes this one waits for.
    pub after: Vec<String>,
    /// The pools that use this node: one, or several for a resource they share.
    pub pools: Vec<String>,
    /// Where, within its cloud, the name is unique ("<account>/<region>", "<account>" for
    /// IAM, the project, the subscription); empty for Prefect, the token clouds and a
    /// credential minted for one block, which no other pool can share.
    #[serde(skip)]
    pub scope: String,
}

impl NodeInfo {
    /// The resource's identity across pools and runs, "<kind>|<scope>|<name>": two pools
    /// whose nodes have one key use one resource, whatever their types. None for what only
    /// one pool can have (its block, its pool, a credential) or what has no scope.
    pub fn key(&self) -> Option<String> {
        (!self.scope.is_empty() && !self.name.is_empty()).then(|| format!("{}|{}|{}", self.kind, self.scope, self.name))
    }

    /// The system the node belongs to, for grouping in the summary: "AWS", "Prefect", ...
    pub fn system(&self) -> &'static str {
        match self.kind.split('.').next().unwrap_or_default() {
            "aws" => "AWS",
            "azure" => "Azure",
            "gcp" => "Google Cloud",
            "prefect" => "Prefect",
            "modal" => "Modal",
            _ => "Local",
        }
    }
}

/// One node: what it is, the kind that implements it, and what it sees of the others.
pub struct Entry {
    /// Metadata shown to users; `after` holds graph ids.
    pub info: NodeInfo,
    /// The implementation.
    pub node: NodeRef,
    /// The node's own name for each dependency (its blueprint id) → the dependency's graph id.
    /// They differ when several pools share a graph: a pool's `vpc` may be another's node.
    pub aliases: BTreeMap<String, String>,
    /// The context attributes (region, account) that the node's references may name.
    pub context: BTreeMap<String, Attrs>,
}

impl Entry {
    /// An entry whose dependencies are known by their graph ids.
    pub fn new(info: NodeInfo, node: NodeRef, context: BTreeMap<String, Attrs>) -> Self {
        let aliases = info.after.iter().map(|d| (d.clone(), d.clone())).collect();
        Self { info, node, aliases, context }
    }
}

/// A checked, acyclic resource graph in dependency order.
pub struct Graph {
    entries: Vec<Entry>,
}

impl Graph {
    /// Checks that every dependency exists and that there is no cycle, and orders the
    /// entries so that each comes after everything it depends on (stable otherwise).
    pub fn new(entries: Vec<Entry>) -> Result<Self> {
        let ids: HashSet<&str> = entries.iter().map(|e| e.info.id.as_str()).collect();
        if ids.len() != entries.len() {
            return Err(Error::usage("resource graph", "two nodes share an id"));
        }
        for entry in &entries {
            for dep in &entry.info.after {
                if !ids.contains(dep.as_str()) {
                    return Err(Error::usage(format!("node '{}'", entry.info.id), format!("depends on unknown node '{dep}'")));
                }
            }
        }
        let mut placed: HashSet<String> = HashSet::new();
        let mut pending = entries;
        let mut ordered = Vec::with_capacity(pending.len());
        while !pending.is_empty() {
            let (ready, rest): (Vec<Entry>, Vec<Entry>) = pending.into_iter().partition(|e| e.info.after.iter().all(|d| placed.contains(d)));
            if ready.is_empty() {
                let stuck: Vec<&str> = rest.iter().map(|e| e.info.id.as_str()).collect();
                return Err(Error::usage("resource graph", format!("dependency cycle among {}", stuck.join(", "))));
            }
            placed.extend(ready.iter().map(|e| e.info.id.clone()));
            ordered.extend(ready);
            pending = rest;
        }
        Ok(Self { entries: ordered })
    }

    /// The entries, each after its dependencies.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry with this id.
    pub fn entry(&self, id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.info.id == id)
    }
}
