//! An account's IAM read once for a run that plans several pools there: one paged
//! `GetAccountAuthorizationDetails` instead of a `GetUser`, `GetPolicy`, `GetPolicyVersion`,
//! `ListAttached*Policies`, `GetRole` and `GetRolePolicy` per entity. A pools file of a hundred
//! pools in ten accounts reads ten inventories, not some four hundred entities one by one (IAM
//! is one endpoint per account, throttled far below that).
//!
//! Small runs keep their reads by name: in an account of thousands of roles the inventory is
//! many pages where one pool needs two reads. An operator whose policy does not grant
//! `iam:GetAccountAuthorizationDetails` (written before pushpool read it) gets the reads by
//! name too, with no error.
//!
//! The inventory is read when the plan observes, and only then: applies and teardowns read
//! each entity by name, as fresh as the write that follows needs.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use aws_sdk_iam::types::{EntityType, ManagedPolicyDetail, RoleDetail, UserDetail};

use super::errors::{aws_error, code};
use crate::engine::memo::Memo;
use crate::error::Result;

/// How many pools of one account make a run read the account's inventory: as with the batched
/// Prefect reads ([`crate::prefect::batch`]), three.
pub const SEVERAL_POOLS: usize = 3;

/// The kinds of IAM entity a node reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Entity {
    /// An IAM user (its tags and attached policies).
    User,
    /// An IAM role (its trust policy, attached and inline policies).
    Role,
    /// A customer managed policy (its default version's document).
    Policy,
}

impl Entity {
    /// The `Filter` value that makes the inventory list this kind.
    fn filter(self) -> EntityType {
        match self {
            Self::User => EntityType::User,
            Self::Role => EntityType::Role,
            Self::Policy => EntityType::LocalManagedPolicy,
        }
    }
}

/// One account's inventory: what the run's nodes will read there, and the details once read.
#[derive(Default)]
pub struct Inventory {
    /// The pools whose nodes read IAM entities of the account, and the kinds they read: known
    /// once the graph is built, before the plan observes.
    wanted: Mutex<(BTreeSet<String>, BTreeSet<Entity>)>,
    details: Memo<(), Result<Option<Arc<Details>>>>,
}

/// Every account's inventory, one per account however many regions and profiles reach it (IAM
/// is global to an account).
static INVENTORIES: OnceLock<Mutex<HashMap<String, Arc<Inventory>>>> = OnceLock::new();

impl Inventory {
    /// The inventory of account `account_id` for this run.
    pub fn of_account(account_id: &str) -> Arc<Self> {
        let mut inventories = INVENTORIES.get_or_init(Mutex::default).lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        inventories.entry(account_id.to_owned()).or_default().clone()
    }

    /// Records that a node of pool `pool` reads an `entity` of the account.
    pub fn want(&self, pool: &str, entity: Entity) {
        let mut wanted = self.wanted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        wanted.0.insert(pool.to_owned());
        wanted.1.insert(entity);
    }

    /// The account's IAM details, read once (every page) when the run plans [`SEVERAL_POOLS`]
    /// pools or more in the account; None when it plans fewer, or when the operator may not
    /// read the inventory: then each node reads its entity by name.
    pub async fn details(&self, iam: &aws_sdk_iam::Client) -> Result<Option<Arc<Details>>> {
        let kinds = {
            let wanted = self.wanted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if wanted.0.len() < SEVERAL_POOLS {
                return Ok(None);
            }
            wanted.1.clone()
        };
        self.details.get_or_init(&(), || read(iam, kinds)).await
    }
}

/// Reads the inventory of the kinds asked for, every page.
async fn read(iam: &aws_sdk_iam::Client, kinds: BTreeSet<Entity>) -> Result<Option<Arc<Details>>> {
    let mut call = iam.get_account_authorization_details();
    for kind in &kinds {
        call = call.filter(kind.filter());
    }
    // 1,000 is the most IAM gives a page; the paginator follows `Marker` while `IsTruncated`.
    let pages = call.max_items(1000).into_paginator().send().try_collect().await;
    let pages = match pages {
        Ok(pages) => pages,
        Err(e) if code(&e).as_deref() == Some("AccessDenied") => return Ok(None),
        Err(e) => return Err(aws_error("the account's IAM users, roles and policies", "iam:GetAccountAuthorizationDetails", e)),
    };
    let mut details = Details::default();
    for page in pages {
        details.users.extend(page.user_detail_list.unwrap_or_default().into_iter().filter_map(|u| Some((u.user_name.clone()?, u))));
        details.roles.extend(page.role_detail_list.unwrap_or_default().into_iter().filter_map(|r| Some((r.role_name.clone()?, r))));
        // By ARN: it names the policy wherever its path, and moto leaves out `PolicyName`.
        details.policies.extend(page.policies.unwrap_or_default().into_iter().filter_map(|p| Some((p.arn.clone()?, p))));
    }
    Ok(Some(Arc::new(details)))
}

/// An account's users, roles and customer managed policies as the inventory gave them.
#[derive(Debug, Default)]
pub struct Details {
    users: HashMap<String, UserDetail>,
    roles: HashMap<String, RoleDetail>,
    policies: HashMap<String, ManagedPolicyDetail>,
}

impl Details {
    /// User `name`, if it exists.
    pub fn user(&self, name: &str) -> Option<&UserDetail> {
        self.users.get(name)
    }

    /// Role `name`, if it exists.
    pub fn role(&self, name: &str) -> Option<&RoleDetail> {
        self.roles.get(name)
    }

    /// The document of the default version of the customer managed policy `arn`: None when
    /// the policy does not exist (the document is URL-encoded, as `GetPolicyVersion` gives it).
    pub fn policy_document(&self, arn: &str) -> Option<&str> {
        let policy = self.policies.get(arn)?;
        let default = policy.policy_version_list().iter().find(|v| v.is_default_version() || v.version_id() == policy.default_version_id());
        Some(default.and_then(|v| v.document()).unwrap_or("{}"))
    }

    /// The ARNs of the managed policies attached to user `name` (none if it does not exist).
    pub fn user_policies(&self, name: &str) -> Vec<&str> {
        self.user(name).map(|u| u.attached_managed_policies().iter().filter_map(|p| p.policy_arn()).collect()).unwrap_or_default()
    }

    /// The ARNs of the managed policies attached to role `name` (none if it does not exist).
    pub fn role_policies(&self, name: &str) -> Vec<&str> {
        self.role(name).map(|r| r.attached_managed_policies().iter().filter_map(|p| p.policy_arn()).collect()).unwrap_or_default()
    }

    /// The document of inline policy `policy` of role `role`, if both exist.
    pub fn role_inline_policy(&self, role: &str, policy: &str) -> Option<&str> {
        let inline = self.role(role)?.role_policy_list().iter().find(|p| p.policy_name() == Some(policy))?;
        Some(inline.policy_document().unwrap_or("{}"))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_iam::types::{AttachedPolicy, PolicyDetail, PolicyVersion};

    use super::*;

    fn details() -> Details {
        let policy = ManagedPolicyDetail::builder()
            .arn("arn:aws:iam::111122223333:policy/p")
            .default_version_id("v2")
            .policy_version_list(PolicyVersion::builder().version_id("v1").document("%7B%22old%22%3A1%7D").build())
            .policy_version_list(PolicyVersion::builder().version_id("v2").is_default_version(true).document("%7B%22new%22%3A1%7D").build())
            .build();
        let attached = AttachedPolicy::builder().policy_arn("arn:aws:iam::111122223333:policy/p").build();
        let user = UserDetail::builder().user_name("u").attached_managed_policies(attached.clone()).build();
        let role = RoleDetail::builder()
            .role_name("r")
            .attached_managed_policies(attached)
            .role_policy_list(PolicyDetail::builder().policy_name("inline").policy_document("{}").build())
            .build();
        Details {
            users: HashMap::from([("u".to_owned(), user)]),
            roles: HashMap::from([("r".to_owned(), role)]),
            policies: HashMap::from([("arn:aws:iam::111122223333:policy/p".to_owned(), policy)]),
        }
    }

    #[test]
    fn a_policy_is_its_default_version_and_attachments_are_the_principals() {
        let details = details();
        assert_eq!(details.policy_document("arn:aws:iam::111122223333:policy/p"), Some("%7B%22new%22%3A1%7D"));
        assert_eq!(details.policy_document("arn:aws:iam::111122223333:policy/other"), None);
        assert_eq!(details.user_policies("u"), ["arn:aws:iam::111122223333:policy/p"]);
        assert!(details.user_policies("nobody").is_empty());
        assert_eq!(details.role_policies("r"), ["arn:aws:iam::111122223333:policy/p"]);
        assert_eq!(details.role_inline_policy("r", "inline"), Some("{}"));
        assert_eq!(details.role_inline_policy("r", "other"), None);
        assert_eq!(details.role_inline_policy("nobody", "inline"), None);
    }

    #[tokio::test]
    async fn fewer_than_several_pools_read_by_name() {
        let inventory = Inventory::default();
        inventory.want("a", Entity::User);
        inventory.want("b", Entity::Policy);
        inventory.want("b", Entity::User);
        let config = aws_sdk_iam::Config::builder().behavior_version(aws_sdk_iam::config::BehaviorVersion::latest()).build();
        // Two pools: no inventory, and no call (this client has no credentials and no region).
        assert!(inventory.details(&aws_sdk_iam::Client::from_conf(config)).await.unwrap().is_none());
    }
}
