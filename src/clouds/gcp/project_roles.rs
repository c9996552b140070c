//! `gcp.project_roles`: the project roles a service account needs, granted by a
//! read-modify-write of the project's IAM policy that adds the account to each role and
//! removes nothing. The policy's etag makes a concurrent change a 409 (ABORTED): the write is
//! redone on a fresh read. A service account just created is not visible to IAM at once: its
//! "does not exist" is waited out, with a bound.
//!
//! Bindings take no labels: they are pushpool's when their service account is. A teardown
//! removes the account from the roles only when the account itself goes.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::api::GoogleError;
use super::context::GcpContext;
use super::service_account::email;
use crate::engine::{Action, Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::{Error, Result};
use crate::retry::backoff;

/// How many writes may meet a concurrent change, or an account not yet visible, in a row.
const WRITES: u32 = 20;

/// The roles of one service account on the project.
pub struct ProjectRoles {
    /// The project.
    pub gcp: Arc<GcpContext>,
    /// The account id.
    pub account: String,
    /// The account's node, whose observation says whether it is new (or, in a teardown, goes).
    pub account_node: String,
    /// The roles: `roles/run.developer`.
    pub roles: Vec<String>,
}

/// Which of the edits a write makes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Edit {
    Grant,
    Revoke,
}

/// The roles of `roles` whose unconditional binding in `policy` holds `member`.
fn granted<'a>(policy: &Value, member: &str, roles: &'a [String]) -> Vec<&'a String> {
    let bindings = policy["bindings"].as_array().map(Vec::as_slice).unwrap_or_default();
    roles
        .iter()
        .filter(|role| {
            bindings.iter().any(|b| b["role"] == role.as_str() && b.get("condition").is_none() && b["members"].as_array().is_some_and(|m| m.iter().any(|x| x == member)))
        })
        .collect()
}

/// `policy` with `member` added to (or removed from) the unconditional binding of each role.
/// Every other binding and member stays; a binding emptied by a removal goes.
fn edited(policy: &Value, member: &str, roles: &[String], edit: Edit) -> Value {
    let mut policy = policy.clone();
    let mut bindings = policy["bindings"].as_array().cloned().unwrap_or_default();
    for role in roles {
        let at = bindings.iter().position(|b| b["role"] == role.as_str() && b.get("condition").is_none());
        match (edit, at) {
            (Edit::Grant, Some(i)) => {
                let members = bindings[i]["members"].as_array_mut();
                match members {
                    Some(members) if !members.iter().any(|m| m == member) => members.push(member.into()),
                    Some(_) => {}
                    None => bindings[i]["members"] = json!([member]),
                }
            }
            (Edit::Grant, None) => bindings.push(json!({"role": role, "members": [member]})),
            (Edit::Revoke, Some(i)) => {
                if let Some(members) = bindings[i]["members"].as_array_mut() {
                    members.retain(|m| m != member);
                }
            }
            (Edit::Revoke, None) => {}
        }
    }
    bindings.retain(|b| b["members"].as_array().is_some_and(|m| !m.is_empty()));
    policy["bindings"] = Value::Array(bindings);
    policy
}

impl ProjectRoles {
    fn member(&self) -> String {
        format!("serviceAccount:{}", email(&self.gcp, &self.account))
    }

    fn what(&self) -> String {
        format!("IAM policy of project {}", self.gcp.project())
    }

    async fn policy(&self) -> Result<Value> {
        let path = format!("v3/projects/{}:getIamPolicy", self.gcp.project());
        self.gcp.resource_manager.send(Method::POST, &path, Some(json!({"options": {"requestedPolicyVersion": 3}})), &self.what()).await
    }

    /// Reads, edits and writes the policy until the write is accepted or nothing is left to do.
    async fn write(&self, edit: Edit) -> Result<()> {
        let (member, what) = (self.member(), self.what());
        let path = format!("v3/projects/{}:setIamPolicy", self.gcp.project());
        let mut attempt = 1;
        loop {
            let policy = self.policy().await?;
            let wanted = edited(&policy, &member, &self.roles, edit);
            if wanted == policy {
                return Ok(());
            }
            let answer = self.gcp.resource_manager.call(Method::POST, &path, Some(json!({"policy": wanted}))).await?;
            let google = GoogleError::of(&answer);
            let retry = match answer.status {
                status if status.is_success() => return Ok(()),
                // Someone changed the policy since it was read: read it again.
                StatusCode::CONFLICT => true,
                StatusCode::BAD_REQUEST if edit == Edit::Grant && google.message.contains("does not exist") => {
                    tokio::time::sleep(backoff(attempt.min(6))).await;
                    true
                }
                _ => false,
            };
            if !retry || attempt == WRITES {
                let error = self.gcp.resource_manager.refused(&Method::POST, &path, &answer, &what);
                return Err(match answer.status {
                    StatusCode::CONFLICT => Error { fix: Some("the policy kept changing under pushpool: run again".into()), ..error },
                    _ => error,
                });
            }
            attempt += 1;
        }
    }
}

impl Node for ProjectRoles {
    fn label(&self) -> &'static str {
        "project IAM roles"
    }

    fn observe<'a>(&'a self, upstream: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let account = upstream.get(&self.account_node).await?;
            let member = self.member();
            let attrs = Attrs::new().with("member", member.as_str()).with("roles", self.roles.clone());
            let granted: Vec<&String> = match account.action {
                Action::Create => Vec::new(),
                _ => granted(&self.policy().await?, &member, &self.roles),
            };
            let missing: Vec<&str> = self.roles.iter().filter(|r| !granted.contains(r)).map(String::as_str).collect();
            Ok(match (&missing[..], granted.is_empty()) {
                ([], _) => Observation::reuse(format!("granted: {}", self.roles.join(", ")), attrs),
                (_, true) => Observation::create(format!("grants {} to {member}", missing.join(", ")), attrs),
                (_, false) => Observation::update(format!("grants {} to {member}", missing.join(", ")), attrs),
            })
        }
        .boxed()
    }

    fn apply<'a>(&'a self, _: &'a Observation, _: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            self.write(Edit::Grant).await?;
            Ok(Attrs::new())
        }
        .boxed()
    }

    fn observe_teardown<'a>(&'a self, upstream: &'a Upstream, _: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let account = upstream.get(&self.account_node).await?;
            let member = self.member();
            let attrs = Attrs::new().with("member", member.as_str()).with("roles", self.roles.clone());
            let granted = granted(&self.policy().await?, &member, &self.roles);
            Ok(match (account.action, granted.is_empty()) {
                (_, true) => Observation::gone(format!("{member} holds none of the roles")),
                (Action::Delete | Action::Gone, false) => {
                    let roles: Vec<&str> = granted.iter().map(|r| r.as_str()).collect();
                    Observation::delete(format!("revokes {} of the service account that goes", roles.join(", ")), attrs)
                }
                _ => Observation::keep(format!("the service account stays ({})", account.reason), attrs),
            })
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, _: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move { self.write(Edit::Revoke).await }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles() -> Vec<String> {
        vec!["roles/run.developer".into(), "roles/iam.serviceAccountUser".into()]
    }

    #[test]
    fn a_grant_adds_the_member_and_keeps_every_other_binding() {
        let policy = json!({"version": 3, "etag": "BwX1", "bindings": [
            {"role": "roles/owner", "members": ["user:a@example.com"]},
            {"role": "roles/run.developer", "members": ["user:b@example.com"]},
            {"role": "roles/run.developer", "members": ["user:c@example.com"], "condition": {"title": "t", "expression": "true"}}]});
        let member = "serviceAccount:sa@p.iam.gserviceaccount.com";
        let granted_policy = edited(&policy, member, &roles(), Edit::Grant);
        assert_eq!(granted_policy["etag"], "BwX1", "the etag goes back with the write");
        assert_eq!(granted_policy["bindings"][0], policy["bindings"][0]);
        assert_eq!(granted_policy["bindings"][1]["members"], json!(["user:b@example.com", member]));
        assert_eq!(granted_policy["bindings"][2], policy["bindings"][2], "conditional bindings are left alone");
        assert_eq!(granted_policy["bindings"][3], json!({"role": "roles/iam.serviceAccountUser", "members": [member]}));
        assert_eq!(granted(&granted_policy, member, &roles()).len(), 2);
        assert_eq!(edited(&granted_policy, member, &roles(), Edit::Grant), granted_policy, "granting twice changes nothing");
        let revoked = edited(&granted_policy, member, &roles(), Edit::Revoke);
        assert_eq!(revoked["bindings"].as_array().unwrap().len(), 3, "the emptied binding goes");
        assert_eq!(revoked["bindings"][1]["members"], json!(["user:b@example.com"]));
        assert!(granted(&revoked, member, &roles()).is_empty());
    }
}
