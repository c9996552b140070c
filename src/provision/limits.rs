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
                let owner =
                    owners.entry(ids[node].as_str()).or_insert_with(|| Owner { what: format!("{kind} '{name}'"), node: node.to_owned(), limit, credentials: Vec::new() });
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::engine::{Attrs, Change, Goal, NodeInfo, Observation};

    /// An IAM user of two keys' limit with the keys of pools `a` and `b`.
    fn shared_user() -> Owners {
        let credentials = ["a", "b"].map(|pool| (format!("{pool}/access_key"), pool.to_owned())).to_vec();
        Owners(vec![Owner { what: "aws.iam_user 'u'".into(), node: "user".into(), limit: (2, "IAM's limit"), credentials }])
    }

    /// A plan of the two keys: each observation's action, remaining count and dead key replaced.
    fn plan(keys: [(Action, u64, Option<&str>); 2]) -> Plan {
        let changes = ["a", "b"].into_iter().zip(keys).map(|(pool, (action, remaining, replaces))| {
            let (id, kind, pools) = (format!("{pool}/access_key"), "aws.iam_access_key".to_owned(), vec![pool.to_owned()]);
            let info = NodeInfo { id, kind, label: String::new(), name: String::new(), says: String::new(), after: Vec::new(), pools, scope: String::new() };
            let attrs = Attrs::new().hint(REMAINING, remaining).hint("replaces", replaces);
            let observed = match action {
                Action::Create => Observation::create("", attrs),
                _ => Observation::reuse("", attrs),
            };
            Change { info, observed: Arc::new(observed) }
        });
        Plan { goal: Goal::Provision, changes: changes.collect() }
    }

    #[test]
    fn the_keys_that_stay_and_those_the_plan_creates_count_together() {
        let owners = shared_user();
        assert!(owners.check_graph().is_ok(), "two keys for two pools fit");
        assert!(owners.check_plan(&plan([(Action::Create, 0, None), (Action::Create, 0, None)])).is_ok());
        assert!(owners.check_plan(&plan([(Action::Create, 1, None), (Action::Reuse, 1, None)])).is_ok(), "b's key is one of the user's");
        assert!(owners.check_plan(&plan([(Action::Create, 2, Some("AKIADEAD")), (Action::Reuse, 2, None)])).is_ok(), "a's dead key goes");
        let error = owners.check_plan(&plan([(Action::Create, 1, None), (Action::Create, 1, None)])).unwrap_err();
        assert!(error.cause.starts_with("it has 1 credential(s) that stay, this run would add 2 for pools 'a', 'b'"), "{error}");
        assert!(error.fix.unwrap().starts_with("give 1 of these pools a user of its own: --set user=<name>"));
    }

    #[test]
    fn more_credentials_in_the_graph_than_the_limit_are_refused_whatever_exists() {
        let mut owners = shared_user();
        owners.0[0].credentials.push(("c/access_key".into(), "c".into()));
        let error = owners.check_graph().unwrap_err();
        assert_eq!(error.what, "aws.iam_user 'u'");
        assert!(error.cause.contains("3 pools of this run ('a', 'b', 'c')") && error.cause.ends_with("2 is the most it can have (IAM's limit)"), "{error}");
        let fix = error.fix.unwrap();
        assert!(fix.starts_with("give 1 of these pools") && !fix.contains("delete") && !fix.contains("quota"), "{fix}");
    }
}
