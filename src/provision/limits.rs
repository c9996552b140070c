//! The credentials a run mints, counted per owner against its cloud's limit
//! ([`clouds::credential_limit`]). Pools of one run can share an owner (the default IAM user),
//! and each pool's block holds a credential of its own, so a limit every pool keeps alone can
//! be broken by the run: two keys per IAM user, three pools on it. Counted twice, each time
//! before any write: the credentials the graph holds, before the plan reads anything; then
//! those of the owner that stay plus those the plan creates.

use std::collections::BTreeMap;

use serde_json::Value;

use super::graph::{PoolPlan, graph_ids};
use crate::clouds;
use crate::engine::{Action, Plan};
use crate::error::{Error, Result};
use crate::minted::REMAINING;

/// The owners of the credentials a run mints, each with those credentials.
pub(super) struct Owners(Vec<Owner>);

/// An owner of credentials (a user, a service account, an application) in a run's graph.
struct Owner {
    /// What it is, as errors name it: "aws.iam_user 'prefect-ecs-user'".
    what: String,
    /// Its node id in the blueprints, for `--set`.
    node: String,
    /// The most credentials it may have, and whose limit that is.
    limit: (usize, &'static str),
    /// Its credentials' graph ids, each with the pool whose block holds it.
    credentials: Vec<(String, String)>,
}

impl Owners {
    /// The owners of every credential of `pools`, as the run's graph joins them.
    pub(super) fn of(pools: &[PoolPlan]) -> Result<Self> {
        let ids = graph_ids(pools)?;
        let mut owners: BTreeMap<&str, Owner> = BTreeMap::new();
        for (pool, ids) in pools.iter().zip(&ids) {
            for spec in &pool.blueprint.nodes {
                let (Some(node), Some(limit)) = (spec.kind.credential_owner(), clouds::credential_limit(&spec.kind)) else { continue };
                let node = node.as_str();
                let kind = pool.blueprint.node(node).map_or("", |owner| owner.kind.name());
                let name = pool.names.get(node).map_or(node, String::as_str);
                let owner = owners.entry(ids[node].as_str()).or_insert_with(|| Owner {
                    what: format!("{kind} '{name}'"),
                    node: node.to_owned(),
                    limit,
                    credentials: Vec::new(),
                });
                owner.credentials.push((ids[&spec.id].clone(), pool.request.name.clone()));
            }
        }
        Ok(Self(owners.into_values().collect()))
    }

    /// Refuses an owner the graph gives more credentials than its limit: whatever exists,
    /// the apply would stop at the one too many.
    pub(super) fn check_graph(&self) -> Result<()> {
        for owner in &self.0 {
            if owner.credentials.len() > owner.limit.0 {
                let pools = owner.pools(|_| true);
                let cause = format!("{} pools of this run ({}) each need a credential of their own from it, and {}", pools.len(), pools.join(", "), owner.most());
                return Err(owner.refusal(cause, pools.len() - owner.limit.0, ""));
            }
        }
        Ok(())
    }

    /// Refuses a plan whose new credentials, with the owner's that stay (those that remain,
    /// less the dead ones the new ones replace), pass its limit.
    pub(super) fn check_plan(&self, plan: &Plan) -> Result<()> {
        let change = |id: &str| plan.change(id).map(|c| &c.observed);
        for owner in &self.0 {
            let creating = |id: &str| change(id).is_some_and(|o| o.action == Action::Create);
            let observed = || owner.credentials.iter().filter_map(|(id, _)| change(id));
            let remaining = observed().filter_map(|o| o.attrs.value(REMAINING).and_then(Value::as_u64)).max().unwrap_or(0) as usize;
            let replaced = observed().filter(|o| o.action == Action::Create && o.attrs.str("replaces").is_some()).count();
            let kept = remaining.saturating_sub(replaced);
            let pools = owner.pools(creating);
            if !pools.is_empty() && kept + pools.len() > owner.limit.0 {
                let cause = format!("it has {kept} credential(s) that stay, this run would add {} for pools {}, and {}", pools.len(), pools.join(", "), owner.most());
                return Err(owner.refusal(cause, kept + pools.len() - owner.limit.0, " (or delete credentials of it you no longer use)"));
            }
        }
        Ok(())
    }
}

impl Owner {
    /// The pools of the credentials that `keep` says of, quoted.
    fn pools(&self, keep: impl Fn(&str) -> bool) -> Vec<String> {
        self.credentials.iter().filter(|(id, _)| keep(id)).map(|(_, pool)| format!("'{pool}'")).collect()
    }

    /// "2 is the most it can have (IAM's limit…)".
    fn most(&self) -> String {
        format!("{} is the most it can have ({})", self.limit.0, self.limit.1)
    }

    /// The error for `cause`, `over` credentials too many: the fix gives pools an owner of
    /// their own, which works whatever the limit, or does what `otherwise` says.
    fn refusal(&self, cause: String, over: usize, otherwise: &str) -> Error {
        let node = &self.node;
        Error::usage(&self.what, cause).fix(format!(
            "give {over} of these pools a {node} of its own: --set {node}=<name> on its command line, or `set = {{ {node} = \"<name>\" }}` in the pools file, one name per pool{otherwise}, then run again"
        ))
    }
}
