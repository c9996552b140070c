//! `aws.iam_access_key`: the IAM user's access key that the credentials block holds.
//!
//! Reused does not mean trusted: the block's key id is checked against the user's keys, and
//! a block whose key was deleted or deactivated gets a new key. IAM allows two keys per
//! user; when a new one would exceed that, the plan stops with the keys and their ages
//! instead of failing halfway. pushpool never deletes a key it did not create.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_iam::types::{AccessKeyMetadata, StatusType};
use futures::FutureExt;
use futures::future::BoxFuture;

use super::context::AwsContext;
use super::errors::{aws_error, code};
use crate::engine::{Attrs, Inputs, Node, Observation, Upstream};
use crate::error::{Error, Result};
use crate::prefect::context::PrefectContext;
use crate::secret::Secret;

/// IAM's limit of access keys per user.
const KEYS_PER_USER: usize = 2;

/// The access key of `user` held by the block `block_slug`/`block_name`.
pub struct AccessKey {
    /// The account.
    pub aws: Arc<AwsContext>,
    /// The Prefect API, to read which key the block holds.
    pub prefect: Arc<PrefectContext>,
    /// The IAM user's name.
    pub user: String,
    /// The block type's slug.
    pub block_slug: String,
    /// The block's name.
    pub block_name: String,
}

impl AccessKey {
    async fn user_keys(&self) -> Result<Vec<AccessKeyMetadata>> {
        match self.aws.iam.list_access_keys().user_name(&self.user).send().await {
            Ok(out) => Ok(out.access_key_metadata().to_vec()),
            Err(e) if code(&e).as_deref() == Some("NoSuchEntity") => Ok(Vec::new()),
            Err(e) => Err(aws_error(&format!("IAM user {}", self.user), "iam:ListAccessKeys", e)),
        }
    }

    fn quota_error(&self, keys: &[AccessKeyMetadata], why: &str) -> Error {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        let listed: Vec<String> = keys
            .iter()
            .map(|k| {
                let age = k.create_date().map(|d| (now - d.secs()).max(0) / 86_400);
                let status = k.status().map(StatusType::as_str).unwrap_or("unknown");
                format!("{} ({status}, {} days old)", k.access_key_id().unwrap_or("?"), age.map_or("?".into(), |a| a.to_string()))
            })
            .collect();
        Error::usage(
            format!("IAM user {}", self.user),
            format!("{why}, but the user already has {KEYS_PER_USER} access keys, IAM's limit: {}", listed.join(", ")),
        )
        .fix(format!(
            "delete a key you no longer use (`aws iam delete-access-key --user-name {} --access-key-id <id>`), or pick another user with --set user=<name>, then run again",
            self.user
        ))
    }
}

impl Node for AccessKey {
    fn label(&self) -> &'static str {
        "IAM access key"
    }

    fn observe<'a>(&'a self, _: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let (block, keys) = futures::join!(self.prefect.block_document(&self.block_slug, &self.block_name), self.user_keys());
            let (block, keys) = (block?, keys?);
            let held = block.as_ref().and_then(|b| b.data.get("aws_access_key_id")?.as_str().map(str::to_owned));
            let live = held.as_deref().and_then(|id| keys.iter().find(|k| k.access_key_id() == Some(id)));
            let why = match (&block, &held, live) {
                (_, Some(id), Some(key)) if key.status() == Some(&StatusType::Active) => {
                    return Ok(Observation::reuse(format!("block {} holds this active key", self.block_name), Attrs::new().with("id", id.as_str())));
                }
                (_, Some(id), Some(_)) => format!("block {} holds key {id}, which is inactive", self.block_name),
                (_, Some(id), None) => format!("block {} holds key {id}, which no longer exists on user {}", self.block_name, self.user),
                (Some(_), None, _) => format!("block {} holds no access key id", self.block_name),
                (None, ..) => format!("block {} does not exist yet", self.block_name),
            };
            if keys.len() >= KEYS_PER_USER {
                return Err(self.quota_error(&keys, &format!("a new access key is needed ({why})")));
            }
            Ok(Observation::create(why, Attrs::new()))
        }
        .boxed()
    }

    fn apply<'a>(&'a self, _: &'a Observation, _: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let what = format!("access key of IAM user {}", self.user);
            let out = self.aws.iam.create_access_key().user_name(&self.user).send().await.map_err(|e| aws_error(&what, "iam:CreateAccessKey", e))?;
            let key = out.access_key().ok_or_else(|| Error::remote(&what, "iam:CreateAccessKey returned no key"))?;
            let mut attrs = Attrs::new().with("id", key.access_key_id());
            attrs.set_secret("secret", Secret::new(key.secret_access_key()));
            Ok(attrs)
        }
        .boxed()
    }
}
