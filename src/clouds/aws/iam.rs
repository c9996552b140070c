//! IAM node kinds: `aws.iam_role`, `aws.iam_user`, `aws.iam_policy`.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_iam::types::Tag;
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;

use super::context::AwsContext;
use super::errors::{accept, aws_error, code};
use super::iam_inventory::Entity;
use super::once::create_once;
use super::policy_doc::{drift, parse_live, same};
use crate::clock::unix_seconds;
use crate::engine::ownership::{decide, owned};
use crate::engine::reference::{Resolved, Secrets, resolve};
use crate::engine::{Action, Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::{Error, Result};
use crate::minted::{Mark, PENDING};

const NO_SUCH_ENTITY: &str = "NoSuchEntity";

/// The user tag pushpool sets, to the [`Mark`] (the time in Unix seconds, and the dead key the
/// new one replaces), before it mints an access key, and removes once the key is stored: found
/// by a later run, it marks keys minted by an interrupted run. The user node reports it as the
/// [`PENDING`] hint.
pub const PENDING_KEY_TAG: &str = "pushpool.key-pending-since";

/// The [`PENDING_KEY_TAG`] of a key about to be minted as `mark` says.
pub fn pending_key_tag(mark: &Mark) -> Tag {
    Tag::builder().key(PENDING_KEY_TAG).value(mark.to_string()).build().expect("a tag with a key and a value")
}

/// An inline policy of a role: its name and document.
pub struct InlinePolicy {
    /// The policy's name on the role.
    pub name: String,
    /// The wanted document.
    pub document: Value,
}

/// `aws.iam_role`: a role with a trust policy, managed policies and one inline policy.
pub struct Role {
    /// The account.
    pub aws: Arc<AwsContext>,
    /// The role's name.
    pub name: String,
    /// Who may assume it.
    pub trust_policy: Value,
    /// ARNs of the managed policies to attach.
    pub managed_policies: Vec<String>,
    /// The extra permissions the managed policies lack.
    pub inline_policy: Option<InlinePolicy>,
}

impl Role {
    fn what(&self) -> String {
        format!("IAM role {}", self.name)
    }

    /// The role as it exists, if it does: from the account's inventory when the run read it,
    /// else by name (its attached and inline policies read at once).
    async fn live(&self) -> Result<Option<LiveRole>> {
        if let Some(details) = self.aws.iam_details().await? {
            return Ok(details.role(&self.name).map(|role| LiveRole {
                arn: role.arn().unwrap_or_default().to_owned(),
                trust: role.assume_role_policy_document().map(str::to_owned),
                attached: details.role_policies(&self.name).into_iter().map(str::to_owned).collect(),
                inline: self.inline_policy.as_ref().and_then(|p| details.role_inline_policy(&self.name, &p.name)).map(str::to_owned),
            }));
        }
        let what = self.what();
        let role = match self.aws.iam.get_role().role_name(&self.name).send().await {
            Ok(out) => out.role().cloned(),
            Err(e) if code(&e).as_deref() == Some(NO_SUCH_ENTITY) => None,
            Err(e) => return Err(aws_error(&what, "iam:GetRole", e)),
        };
        let Some(role) = role else { return Ok(None) };
        let attached = self.aws.iam.list_attached_role_policies().role_name(&self.name).into_paginator().items().send().try_collect();
        let inline = async {
            let Some(inline) = &self.inline_policy else { return Ok(None) };
            match self.aws.iam.get_role_policy().role_name(&self.name).policy_name(&inline.name).send().await {
                Ok(out) => Ok(Some(out.policy_document().to_owned())),
                Err(e) if code(&e).as_deref() == Some(NO_SUCH_ENTITY) => Ok(None),
                Err(e) => Err(aws_error(&what, "iam:GetRolePolicy", e)),
            }
        };
        let (attached, inline) = futures::join!(attached, inline);
        let attached = attached.map_err(|e| aws_error(&what, "iam:ListAttachedRolePolicies", e))?;
        Ok(Some(LiveRole {
            arn: role.arn().to_owned(),
            trust: role.assume_role_policy_document().map(str::to_owned),
            attached: attached.iter().filter_map(|p| p.policy_arn().map(str::to_owned)).collect(),
            inline: inline?,
        }))
    }

    /// What differs on an existing role: (trust drifted, managed policies missing, inline drifted).
    fn drift(&self, live: &LiveRole) -> Result<(bool, Vec<String>, bool)> {
        let missing = self.managed_policies.iter().filter(|arn| !live.attached.contains(arn)).cloned().collect();
        let trust_drift = match &live.trust {
            Some(trust) => !same(&parse_live(trust)?, &self.trust_policy),
            None => true,
        };
        let inline_drift = match (&self.inline_policy, &live.inline) {
            (None, _) => false,
            (Some(wanted), Some(document)) => !same(&parse_live(document)?, &wanted.document),
            (Some(_), None) => true,
        };
        Ok((trust_drift, missing, inline_drift))
    }
}

/// A role as IAM has it.
struct LiveRole {
    arn: String,
    /// Its trust policy (URL-encoded).
    trust: Option<String>,
    /// The ARNs of its attached managed policies.
    attached: Vec<String>,
    /// The document of the inline policy pushpool wants on it, if it has that policy.
    inline: Option<String>,
}

impl Node for Role {
    fn label(&self) -> &'static str {
        "IAM role"
    }

    fn observe<'a>(&'a self, _: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let Some(role) = self.live().await? else {
                let attrs = Attrs::new().with("name", self.name.as_str()).with("arn", self.aws.iam_arn("role", &self.name));
                return Ok(Observation::create("missing", attrs));
            };
            let attrs = Attrs::new().with("name", self.name.as_str()).with("arn", role.arn.as_str());
            let (trust_drift, missing, inline_drift) = self.drift(&role)?;
            let mut reasons = Vec::new();
            if trust_drift {
                reasons.push("trust policy differs".to_owned());
            }
            if !missing.is_empty() {
                reasons.push(format!("attach {}", missing.join(", ")));
            }
            if inline_drift {
                let name = self.inline_policy.as_ref().map(|p| p.name.as_str()).unwrap_or_default();
                reasons.push(format!("inline policy {name} missing or drifted"));
            }
            let attrs = attrs.hint("trust_drift", trust_drift).hint("missing_policies", missing).hint("inline_drift", inline_drift);
            Ok(if reasons.is_empty() { Observation::reuse("exists as wanted", attrs) } else { Observation::update(reasons.join("; "), attrs) })
        }
        .boxed()
    }

    fn apply<'a>(&'a self, observed: &'a Observation, _: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let what = self.what();
            let iam = &self.aws.iam;
            let created = observed.action == Action::Create;
            let flag = |key: &str| observed.attrs.flag(key, created);
            let mut arn = observed.attrs.str("arn").unwrap_or_default().to_owned();
            if created {
                let create = || async {
                    let out = self
                        .aws
                        .once
                        .iam
                        .create_role()
                        .role_name(&self.name)
                        .assume_role_policy_document(self.trust_policy.to_string())
                        .description("ECS task execution role for Prefect flow runs (pushpool)")
                        .set_tags(Some(self.aws.iam_tags()))
                        .send()
                        .await?;
                    Ok(out.role().map(|r| r.arn().to_owned()))
                };
                let lookup = || async {
                    match iam.get_role().role_name(&self.name).send().await {
                        Ok(out) => Ok(out.role().map(|r| r.arn().to_owned())),
                        Err(e) if code(&e).as_deref() == Some(NO_SUCH_ENTITY) => Ok(None),
                        Err(e) => Err(aws_error(&what, "iam:GetRole", e)),
                    }
                };
                arn = create_once(&what, "iam:CreateRole", create, lookup).await?;
            } else if flag("trust_drift") {
                iam.update_assume_role_policy()
                    .role_name(&self.name)
                    .policy_document(self.trust_policy.to_string())
                    .send()
                    .await
                    .map_err(|e| aws_error(&what, "iam:UpdateAssumeRolePolicy", e))?;
            }
            let missing = if created { self.managed_policies.clone() } else { observed.attrs.strings("missing_policies") };
            let what = &what;
            let attach = missing.iter().map(|policy| async move {
                iam.attach_role_policy().role_name(&self.name).policy_arn(policy).send().await.map_err(|e| aws_error(what, "iam:AttachRolePolicy", e))
            });
            let inline = async {
                match &self.inline_policy {
                    Some(inline) if flag("inline_drift") => iam
                        .put_role_policy()
                        .role_name(&self.name)
                        .policy_name(&inline.name)
                        .policy_document(inline.document.to_string())
                        .send()
                        .await
                        .map(drop)
                        .map_err(|e| aws_error(what, "iam:PutRolePolicy", e)),
                    _ => Ok(()),
                }
            };
            let (attached, inline) = futures::join!(futures::future::join_all(attach), inline);
            attached.into_iter().collect::<Result<Vec<_>>>()?;
            inline?;
            Ok(Attrs::new().with("arn", arn))
        }
        .boxed()
    }

    fn observe_teardown<'a>(&'a self, _: &'a Upstream, teardown: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let role = match self.aws.iam.get_role().role_name(&self.name).send().await {
                Ok(out) => out.role().cloned(),
                Err(e) if code(&e).as_deref() == Some(NO_SUCH_ENTITY) => None,
                Err(e) => return Err(aws_error(&self.what(), "iam:GetRole", e)),
            };
            let Some(role) = role else { return Ok(Observation::gone("does not exist")) };
            let owned = owned(role.tags().iter().map(|t| (t.key(), t.value())));
            let in_use = teardown.in_use([role.arn(), self.name.as_str()]);
            Ok(decide(owned, in_use, Attrs::new().with("arn", role.arn()), "created by pushpool, used by no other pool"))
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, _: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move {
            let (what, iam, name) = (&self.what(), &self.aws.iam, self.name.as_str());
            let (attached, inline) = futures::join!(
                iam.list_attached_role_policies().role_name(name).into_paginator().items().send().try_collect(),
                iam.list_role_policies().role_name(name).into_paginator().items().send().try_collect()
            );
            let attached = attached.map_err(|e| aws_error(what, "iam:ListAttachedRolePolicies", e))?;
            let inline = inline.map_err(|e| aws_error(what, "iam:ListRolePolicies", e))?;
            let detach = attached
                .iter()
                .filter_map(|p| p.policy_arn())
                .map(|arn| async move { accept(iam.detach_role_policy().role_name(name).policy_arn(arn).send().await, &[NO_SUCH_ENTITY], what, "iam:DetachRolePolicy") });
            let delete_inline = inline.iter().map(|policy| async move {
                accept(iam.delete_role_policy().role_name(name).policy_name(policy).send().await, &[NO_SUCH_ENTITY], what, "iam:DeleteRolePolicy")
            });
            let (detached, deleted) = futures::join!(futures::future::join_all(detach), futures::future::join_all(delete_inline));
            detached.into_iter().chain(deleted).collect::<Result<Vec<_>>>()?;
            accept(iam.delete_role().role_name(name).send().await, &[NO_SUCH_ENTITY], what, "iam:DeleteRole")
        }
        .boxed()
    }
}

/// `aws.iam_user`: the user whose access key the pool's credentials block holds.
pub struct User {
    /// The account.
    pub aws: Arc<AwsContext>,
    /// The user's name.
    pub name: String,
}

impl User {
    /// The user's ARN and [`PENDING_KEY_TAG`], if it exists: from the account's inventory when
    /// the run read it, else by name.
    async fn live(&self) -> Result<Option<(String, Option<String>)>> {
        let pending = |tags: &[Tag]| tags.iter().find(|t| t.key() == PENDING_KEY_TAG).map(|t| t.value().to_owned());
        if let Some(details) = self.aws.iam_details().await? {
            return Ok(details.user(&self.name).map(|u| (u.arn().unwrap_or_default().to_owned(), pending(u.tags()))));
        }
        match self.aws.iam.get_user().user_name(&self.name).send().await {
            Ok(out) => Ok(out.user().map(|u| (u.arn().to_owned(), pending(u.tags())))),
            Err(e) if code(&e).as_deref() == Some(NO_SUCH_ENTITY) => Ok(None),
            Err(e) => Err(aws_error(&format!("IAM user {}", self.name), "iam:GetUser", e)),
        }
    }
}

impl Node for User {
    fn label(&self) -> &'static str {
        "IAM user"
    }

    fn observe<'a>(&'a self, _: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let attrs = Attrs::new().with("name", self.name.as_str());
            let Some((arn, mark)) = self.live().await? else { return Ok(Observation::create("missing", attrs)) };
            let mut attrs = attrs.with("arn", arn);
            if let Some(mark) = mark {
                attrs = attrs.hint(PENDING, mark);
            }
            Ok(Observation::reuse("exists", attrs))
        }
        .boxed()
    }

    fn apply<'a>(&'a self, _: &'a Observation, _: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let what = format!("IAM user {}", self.name);
            // A new user gets its access key in this apply: it is created with the mark the key
            // node would otherwise set with a call of its own (see PENDING_KEY_TAG).
            let mark = Mark::at(unix_seconds());
            let tag = pending_key_tag(&mark);
            let create = || async {
                let mut tags = self.aws.iam_tags();
                tags.push(tag.clone());
                let out = self.aws.once.iam.create_user().user_name(&self.name).set_tags(Some(tags)).send().await?;
                Ok(out.user().map(|u| u.arn().to_owned()))
            };
            let lookup = || async {
                match self.aws.iam.get_user().user_name(&self.name).send().await {
                    Ok(out) => Ok(out.user().map(|u| u.arn().to_owned())),
                    Err(e) if code(&e).as_deref() == Some(NO_SUCH_ENTITY) => Ok(None),
                    Err(e) => Err(aws_error(&what, "iam:GetUser", e)),
                }
            };
            let arn = create_once(&what, "iam:CreateUser", create, lookup).await?;
            Ok(Attrs::new().with("arn", arn).hint(PENDING, mark.to_string()))
        }
        .boxed()
    }

    fn observe_teardown<'a>(&'a self, _: &'a Upstream, teardown: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let what = format!("IAM user {}", self.name);
            let (user, keys) = futures::join!(
                self.aws.iam.get_user().user_name(&self.name).send(),
                self.aws.iam.list_access_keys().user_name(&self.name).into_paginator().items().send().try_collect()
            );
            let user = match user {
                Ok(out) => out.user().cloned(),
                Err(e) if code(&e).as_deref() == Some(NO_SUCH_ENTITY) => None,
                Err(e) => return Err(aws_error(&what, "iam:GetUser", e)),
            };
            let Some(user) = user else { return Ok(Observation::gone("does not exist")) };
            let keys = match keys {
                Ok(keys) => keys.iter().filter_map(|k| k.access_key_id().map(str::to_owned)).collect(),
                Err(e) if code(&e).as_deref() == Some(NO_SUCH_ENTITY) => Vec::new(),
                Err(e) => return Err(aws_error(&what, "iam:ListAccessKeys", e)),
            };
            let attrs = Attrs::new().with("arn", user.arn()).with("keys", keys.clone());
            // The user is in use while another block holds one of its keys.
            let identifiers = keys.iter().map(String::as_str).chain([user.arn(), self.name.as_str()]);
            let owned = owned(user.tags().iter().map(|t| (t.key(), t.value())));
            let in_use = teardown.in_use(identifiers).map(|used| format!("{used}, which holds one of its access keys"));
            Ok(decide(owned, in_use, attrs, "created by pushpool; no other block holds one of its keys"))
        }
        .boxed()
    }

    /// Deletes the user with what IAM requires gone first: its keys and policies. Only keys
    /// no block holds remain by now (the teardown checked), minted by pushpool for it.
    fn tear_down<'a>(&'a self, _: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move {
            let (what, iam, name) = (&format!("IAM user {}", self.name), &self.aws.iam, self.name.as_str());
            let (keys, attached, inline) = futures::join!(
                iam.list_access_keys().user_name(name).into_paginator().items().send().try_collect(),
                iam.list_attached_user_policies().user_name(name).into_paginator().items().send().try_collect(),
                iam.list_user_policies().user_name(name).into_paginator().items().send().try_collect()
            );
            let keys = keys.map_err(|e| aws_error(what, "iam:ListAccessKeys", e))?;
            let attached = attached.map_err(|e| aws_error(what, "iam:ListAttachedUserPolicies", e))?;
            let inline = inline.map_err(|e| aws_error(what, "iam:ListUserPolicies", e))?;
            let mut steps: Vec<BoxFuture<'_, Result<()>>> = Vec::new();
            for key in keys.iter().filter_map(|k| k.access_key_id()) {
                steps.push(
                    async move { accept(iam.delete_access_key().user_name(name).access_key_id(key).send().await, &[NO_SUCH_ENTITY], what, "iam:DeleteAccessKey") }.boxed(),
                );
            }
            for arn in attached.iter().filter_map(|p| p.policy_arn()) {
                steps.push(
                    async move { accept(iam.detach_user_policy().user_name(name).policy_arn(arn).send().await, &[NO_SUCH_ENTITY], what, "iam:DetachUserPolicy") }.boxed(),
                );
            }
            for policy in &inline {
                steps.push(
                    async move { accept(iam.delete_user_policy().user_name(name).policy_name(policy).send().await, &[NO_SUCH_ENTITY], what, "iam:DeleteUserPolicy") }
                        .boxed(),
                );
            }
            futures::future::join_all(steps).await.into_iter().collect::<Result<Vec<_>>>()?;
            accept(iam.delete_user().user_name(name).send().await, &[NO_SUCH_ENTITY], what, "iam:DeleteUser")
        }
        .boxed()
    }
}

/// What a managed policy is attached to: a user (whose key the pool uses) or a role (a
/// worker's task role).
pub enum Principal {
    /// An IAM user, by name.
    User(String),
    /// An IAM role, by name.
    Role(String),
}

impl Principal {
    /// The kind of entity it is, for the account's inventory.
    pub fn entity(&self) -> Entity {
        match self {
            Self::User(_) => Entity::User,
            Self::Role(_) => Entity::Role,
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::User(name) => format!("IAM user {name}"),
            Self::Role(name) => format!("IAM role {name}"),
        }
    }

    /// Whether policy `arn` is attached to it (false if it does not exist).
    async fn is_attached(&self, aws: &AwsContext, arn: &str) -> Result<bool> {
        if let Some(details) = aws.iam_details().await? {
            let attached = match self {
                Self::User(name) => details.user_policies(name),
                Self::Role(name) => details.role_policies(name),
            };
            return Ok(attached.contains(&arn));
        }
        let (iam, what) = (&aws.iam, self.describe());
        let policies = match self {
            Self::User(name) => match iam.list_attached_user_policies().user_name(name).into_paginator().items().send().try_collect().await {
                Ok(policies) => policies,
                Err(e) if code(&e).as_deref() == Some(NO_SUCH_ENTITY) => return Ok(false),
                Err(e) => return Err(aws_error(&what, "iam:ListAttachedUserPolicies", e)),
            },
            Self::Role(name) => match iam.list_attached_role_policies().role_name(name).into_paginator().items().send().try_collect().await {
                Ok(policies) => policies,
                Err(e) if code(&e).as_deref() == Some(NO_SUCH_ENTITY) => return Ok(false),
                Err(e) => return Err(aws_error(&what, "iam:ListAttachedRolePolicies", e)),
            },
        };
        Ok(policies.iter().any(|p| p.policy_arn() == Some(arn)))
    }

    async fn attach(&self, iam: &aws_sdk_iam::Client, arn: &str, what: &str) -> Result<()> {
        match self {
            Self::User(name) => iam.attach_user_policy().user_name(name).policy_arn(arn).send().await.map(drop).map_err(|e| aws_error(what, "iam:AttachUserPolicy", e)),
            Self::Role(name) => iam.attach_role_policy().role_name(name).policy_arn(arn).send().await.map(drop).map_err(|e| aws_error(what, "iam:AttachRolePolicy", e)),
        }
    }

    async fn detach(&self, iam: &aws_sdk_iam::Client, arn: &str, what: &str) -> Result<()> {
        match self {
            Self::User(name) => accept(iam.detach_user_policy().user_name(name).policy_arn(arn).send().await, &[NO_SUCH_ENTITY], what, "iam:DetachUserPolicy"),
            Self::Role(name) => accept(iam.detach_role_policy().role_name(name).policy_arn(arn).send().await, &[NO_SUCH_ENTITY], what, "iam:DetachRolePolicy"),
        }
    }

    /// Whether the entity `kind` ("user", "role") named `name` is this principal.
    fn is(&self, kind: &str, name: &str) -> bool {
        matches!((self, kind), (Self::User(own), "user") | (Self::Role(own), "role") if own == name)
    }
}

/// `aws.iam_policy`: a customer managed policy attached to a user or a role. Its document may name
/// other nodes' attributes (`@execution_role.arn` for `iam:PassRole`, `@repository.arn`); a
/// drifted document gets a new default version.
pub struct Policy {
    /// The account.
    pub aws: Arc<AwsContext>,
    /// The policy's name.
    pub name: String,
    /// What it is for: its description in IAM.
    pub description: String,
    /// The document, with `@node.attr` references.
    pub document: Value,
    /// The user or role it is attached to.
    pub attach_to: Principal,
    /// That principal's node, whose teardown decides whether the policy goes too.
    pub principal_node: String,
}

/// IAM keeps at most five versions of a managed policy.
const MAX_POLICY_VERSIONS: usize = 5;

impl Policy {
    fn what(&self) -> String {
        format!("IAM policy {}", self.name)
    }

    /// The wanted document with the references `known` resolves.
    fn wanted(&self, known: &BTreeMap<String, Attrs>) -> Result<Resolved> {
        resolve(&self.document, known, Secrets::Refuse)
    }

    /// The users, groups and roles other than its own user that have the policy attached.
    async fn attached_elsewhere(&self, arn: &str) -> Result<Vec<String>> {
        // Three lists per page (users, groups, roles), so no `items()`: every page is read.
        let pages = self.aws.iam.list_entities_for_policy().policy_arn(arn).into_paginator().send().try_collect().await;
        let pages = pages.map_err(|e| aws_error(&self.what(), "iam:ListEntitiesForPolicy", e))?;
        let own = &self.attach_to;
        let users = pages.iter().flat_map(|p| p.policy_users()).filter_map(|u| u.user_name()).filter(|u| !own.is("user", u)).map(|u| format!("IAM user {u}"));
        let groups = pages.iter().flat_map(|p| p.policy_groups()).filter_map(|g| g.group_name()).map(|g| format!("IAM group {g}"));
        let roles = pages.iter().flat_map(|p| p.policy_roles()).filter_map(|r| r.role_name()).filter(|r| !own.is("role", r)).map(|r| format!("IAM role {r}"));
        Ok(users.chain(groups).chain(roles).collect())
    }

    /// The live default document, or None when the policy does not exist.
    async fn live_document(&self, arn: &str) -> Result<Option<Value>> {
        match self.default_version(arn).await? {
            Some(version) => self.document_of(arn, &version).await.map(Some),
            None => Ok(None),
        }
    }

    /// The id of the policy's default version, or None when the policy does not exist.
    async fn default_version(&self, arn: &str) -> Result<Option<String>> {
        match self.aws.iam.get_policy().policy_arn(arn).send().await {
            Ok(out) => Ok(out.policy().and_then(|p| p.default_version_id()).map(str::to_owned)),
            Err(e) if code(&e).as_deref() == Some(NO_SUCH_ENTITY) => Ok(None),
            Err(e) => Err(aws_error(&self.what(), "iam:GetPolicy", e)),
        }
    }

    /// The document of one version of the policy.
    async fn document_of(&self, arn: &str, version: &str) -> Result<Value> {
        let out = self.aws.iam.get_policy_version().policy_arn(arn).version_id(version).send().await.map_err(|e| aws_error(&self.what(), "iam:GetPolicyVersion", e))?;
        parse_live(out.policy_version().and_then(|v| v.document()).unwrap_or("{}"))
    }

    /// Makes `document` the default version, deleting the oldest non-default version first
    /// when IAM's limit of five is reached.
    async fn new_version(&self, arn: &str, document: &Value) -> Result<()> {
        let what = self.what();
        let iam = &self.aws.iam;
        let versions = iam.list_policy_versions().policy_arn(arn).into_paginator().items().send().try_collect().await;
        let versions = versions.map_err(|e| aws_error(&what, "iam:ListPolicyVersions", e))?;
        if versions.len() >= MAX_POLICY_VERSIONS {
            let oldest = versions.iter().filter(|v| !v.is_default_version()).min_by_key(|v| v.create_date().map(|d| d.secs()).unwrap_or(i64::MAX));
            if let Some(id) = oldest.and_then(|v| v.version_id()) {
                iam.delete_policy_version().policy_arn(arn).version_id(id).send().await.map_err(|e| aws_error(&what, "iam:DeletePolicyVersion", e))?;
            }
        }
        iam.create_policy_version()
            .policy_arn(arn)
            .policy_document(document.to_string())
            .set_as_default(true)
            .send()
            .await
            .map_err(|e| aws_error(&what, "iam:CreatePolicyVersion", e))?;
        Ok(())
    }
}

impl Node for Policy {
    fn label(&self) -> &'static str {
        "IAM policy"
    }

    fn observe<'a>(&'a self, upstream: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let arn = self.aws.iam_arn("policy", &self.name);
            // A missing policy is attached to nothing: its attachment is read only when it exists.
            let live_and_attached = async {
                if let Some(details) = self.aws.iam_details().await? {
                    let Some(document) = details.policy_document(&arn) else { return Ok(None) };
                    return Ok(Some((parse_live(document)?, self.attach_to.is_attached(&self.aws, &arn).await?)));
                }
                let Some(version) = self.default_version(&arn).await? else { return Ok(None) };
                let (live, attached) = futures::join!(self.document_of(&arn, &version), self.attach_to.is_attached(&self.aws, &arn));
                Ok::<_, crate::error::Error>(Some((live?, attached?)))
            };
            let (live, known) = futures::join!(live_and_attached, upstream.attrs_for(&self.document));
            let (live, wanted) = (live?, self.wanted(&known?)?);
            let attrs = Attrs::new().with("name", self.name.as_str()).with("arn", arn.as_str());
            let Some((live, attached)) = live else { return Ok(Observation::create("missing", attrs)) };
            let drift = drift(&live, &wanted);
            let drifted = drift.is_some();
            let mut reasons: Vec<String> = drift.into_iter().collect();
            if !attached {
                reasons.push(format!("not attached to {}", self.attach_to.describe()));
            }
            let attrs = attrs.hint("drifted", drifted).hint("attached", attached);
            Ok(if reasons.is_empty() { Observation::reuse("exists as wanted", attrs) } else { Observation::update(reasons.join("; "), attrs) })
        }
        .boxed()
    }

    fn apply<'a>(&'a self, observed: &'a Observation, inputs: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let what = self.what();
            let iam = &self.aws.iam;
            let Resolved::Known(document) = self.wanted(inputs.all())? else {
                return Err(Error::remote(what, "its document is still unknown after its dependencies"));
            };
            let mut arn = observed.attrs.require_str(&self.name, "arn")?.to_owned();
            if observed.action == Action::Create {
                let create = || async {
                    let out = self
                        .aws
                        .once
                        .iam
                        .create_policy()
                        .policy_name(&self.name)
                        .policy_document(document.to_string())
                        .description(&self.description)
                        .set_tags(Some(self.aws.iam_tags()))
                        .send()
                        .await?;
                    Ok(out.policy().and_then(|p| p.arn()).map(str::to_owned))
                };
                let lookup = || async { Ok(self.live_document(&arn).await?.map(|_| arn.clone())) };
                arn = create_once(&what, "iam:CreatePolicy", create, lookup).await?;
            } else if observed.attrs.flag("drifted", false) {
                self.new_version(&arn, &document).await?;
            }
            if !observed.attrs.flag("attached", false) {
                self.attach_to.attach(iam, &arn, &what).await?;
            }
            Ok(Attrs::new().with("arn", arn).hint("attached", true))
        }
        .boxed()
    }

    /// The policy follows its user or role: it stays while that stays, and while anything else
    /// has it attached.
    fn observe_teardown<'a>(&'a self, upstream: &'a Upstream, teardown: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let what = self.what();
            let arn = self.aws.iam_arn("policy", &self.name);
            let (policy, principal) = futures::join!(self.aws.iam.get_policy().policy_arn(&arn).send(), upstream.get(&self.principal_node));
            let policy = match policy {
                Ok(out) => out.policy().cloned(),
                Err(e) if code(&e).as_deref() == Some(NO_SUCH_ENTITY) => None,
                Err(e) => return Err(aws_error(&what, "iam:GetPolicy", e)),
            };
            let Some(policy) = policy else { return Ok(Observation::gone("does not exist")) };
            let owned = owned(policy.tags().iter().map(|t| (t.key(), t.value())));
            let decided = decide(owned, teardown.in_use([arn.as_str()]), Attrs::new().with("arn", arn.as_str()), "created by pushpool, attached to nothing else");
            if decided.action != Action::Delete {
                return Ok(decided);
            }
            if principal?.action == Action::Keep {
                return Ok(Observation::keep(format!("attached to {}, which stays", self.attach_to.describe()), decided.attrs));
            }
            let others = self.attached_elsewhere(&arn).await?;
            Ok(if others.is_empty() { decided } else { Observation::keep(format!("also attached to {}", others.join(", ")), decided.attrs) })
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, observed: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move {
            let (what, iam) = (&self.what(), &self.aws.iam);
            let arn = observed.attrs.require_str(&self.name, "arn")?;
            self.attach_to.detach(iam, arn, what).await?;
            let versions = match iam.list_policy_versions().policy_arn(arn).into_paginator().items().send().try_collect().await {
                Ok(versions) => versions,
                Err(e) if code(&e).as_deref() == Some(NO_SUCH_ENTITY) => return Ok(()),
                Err(e) => return Err(aws_error(what, "iam:ListPolicyVersions", e)),
            };
            // IAM deletes a policy only once its other versions are gone.
            let old = versions.iter().filter(|v| !v.is_default_version()).filter_map(|v| v.version_id()).map(|id| async move {
                accept(iam.delete_policy_version().policy_arn(arn).version_id(id).send().await, &[NO_SUCH_ENTITY], what, "iam:DeletePolicyVersion")
            });
            futures::future::join_all(old).await.into_iter().collect::<Result<Vec<_>>>()?;
            accept(iam.delete_policy().policy_arn(arn).send().await, &[NO_SUCH_ENTITY], what, "iam:DeletePolicy")
        }
        .boxed()
    }
}
