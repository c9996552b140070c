//! `aws.iam_access_key`: the IAM user's access key that the credentials block holds.
//!
//! Reused does not mean trusted: the block's key id is checked against the user's keys, and
//! a block whose key was deleted or deactivated gets a new key. IAM allows two keys per
//! user; when a new one would exceed that, the plan stops with the keys and their ages
//! instead of failing halfway.
//!
//! A key's secret is shown once, so a minted key cannot be adopted the way a VPC can: a run
//! killed between minting and storing it leaves a key nobody holds. Before minting, the user
//! is tagged with the time ([`PENDING_KEY_TAG`]); the tag goes once the block holding the key
//! is stored.
//! A run that finds the tag deletes the keys created since then that no `aws-credentials`
//! block of the workspace holds: those can only be keys pushpool minted and lost. pushpool
//! never deletes any other key.

use std::sync::Arc;

use aws_sdk_iam::types::{AccessKeyMetadata, StatusType};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;

use super::context::AwsContext;
use super::errors::{aws_error, code};
use super::iam::{PENDING_KEY_TAG, pending_key_tag};
use super::once::{Outcome, outcome};
use crate::engine::{Action, Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::{Error, Result};
use crate::prefect::context::PrefectContext;
use crate::clock::unix_seconds;
use crate::retry::{ATTEMPTS, backoff};
use crate::secret::Secret;

/// IAM's limit of access keys per user.
const KEYS_PER_USER: usize = 2;

/// Keys created this long before the mark still count as the interrupted run's (clock skew).
const SKEW_SECONDS: i64 = 60;


/// The access key of `user` held by the block `block_slug`/`block_name`.
pub struct AccessKey {
    /// The account.
    pub aws: Arc<AwsContext>,
    /// The Prefect API, to read which key the block holds.
    pub prefect: Arc<PrefectContext>,
    /// The IAM user's name.
    pub user: String,
    /// The user's node.
    pub user_node: String,
    /// The block type's slug.
    pub block_slug: String,
    /// The block's name.
    pub block_name: String,
}

impl AccessKey {
    fn what(&self) -> String {
        format!("access key of IAM user {}", self.user)
    }

    async fn user_keys(&self) -> Result<Vec<AccessKeyMetadata>> {
        match self.aws.iam.list_access_keys().user_name(&self.user).send().await {
            Ok(out) => Ok(out.access_key_metadata().to_vec()),
            Err(e) if code(&e).as_deref() == Some("NoSuchEntity") => Ok(Vec::new()),
            Err(e) => Err(aws_error(&format!("IAM user {}", self.user), "iam:ListAccessKeys", e)),
        }
    }

    /// The keys of the user created since `since` that no block of the workspace holds.
    async fn orphans(&self, since: i64) -> Result<Vec<String>> {
        let (keys, blocks) = futures::join!(self.user_keys(), self.prefect.client.block_documents_of_type(&self.block_slug));
        let held: Vec<String> =
            blocks?.iter().filter_map(|b| b.data.get("aws_access_key_id")?.as_str().map(str::to_owned)).collect();
        Ok(keys?
            .iter()
            .filter(|k| k.create_date().is_some_and(|d| d.secs() >= since - SKEW_SECONDS))
            .filter_map(|k| k.access_key_id())
            .filter(|id| !held.iter().any(|h| h == id))
            .map(str::to_owned)
            .collect())
    }

    async fn delete_keys(&self, keys: &[String]) -> Result<()> {
        for key in keys {
            let deleted = self.aws.iam.delete_access_key().user_name(&self.user).access_key_id(key).send().await;
            match deleted {
                Ok(_) => {}
                Err(e) if code(&e).as_deref() == Some("NoSuchEntity") => {}
                Err(e) => return Err(aws_error(&self.what(), "iam:DeleteAccessKey", e)),
            }
        }
        Ok(())
    }

    async fn mark(&self, since: i64) -> Result<()> {
        self.aws.iam.tag_user().user_name(&self.user).tags(pending_key_tag(since)).send().await.map_err(|e| aws_error(&self.what(), "iam:TagUser", e))?;
        Ok(())
    }

    async fn unmark(&self) -> Result<()> {
        let untagged = self.aws.iam.untag_user().user_name(&self.user).tag_keys(PENDING_KEY_TAG).send().await;
        untagged.map(drop).map_err(|e| aws_error(&self.what(), "iam:UntagUser", e))
    }

    /// Mints a key. IAM gives no way to tell whether a create whose answer was lost
    /// happened, so on such a failure the keys minted since the mark are deleted and the
    /// create tried again.
    async fn mint(&self, since: i64) -> Result<(String, Secret)> {
        let mut attempt = 1;
        loop {
            let err = match self.aws.once.iam.create_access_key().user_name(&self.user).send().await {
                Ok(out) => {
                    let key = out.access_key().ok_or_else(|| Error::remote(self.what(), "iam:CreateAccessKey returned no key"))?;
                    return Ok((key.access_key_id().to_owned(), Secret::new(key.secret_access_key())));
                }
                Err(err) => err,
            };
            match outcome(&err) {
                _ if attempt == ATTEMPTS => return Err(aws_error(&self.what(), "iam:CreateAccessKey", err)),
                Outcome::Failed => return Err(aws_error(&self.what(), "iam:CreateAccessKey", err)),
                Outcome::Unknown => self.delete_keys(&self.orphans(since).await?).await?,
                Outcome::Refused => {}
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    }

    fn quota_error(&self, keys: &[&AccessKeyMetadata], why: &str) -> Error {
        let listed: Vec<String> = keys
            .iter()
            .map(|k| {
                let age = k.create_date().map(|d| (unix_seconds() - d.secs()).max(0) / 86_400);
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

    fn observe<'a>(&'a self, upstream: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let (block, user) = futures::join!(self.prefect.block_document(&self.block_slug, &self.block_name), upstream.get(&self.user_node));
            let (block, user) = (block?, user?);
            // A user yet to be created has no keys.
            let keys = if user.action == Action::Create { Vec::new() } else { self.user_keys().await? };
            let pending = user.attrs.value(PENDING_KEY_TAG).and_then(Value::as_i64);
            let orphans = match pending {
                Some(since) => self.orphans(since).await?,
                None => Vec::new(),
            };
            let mut attrs = Attrs::new().with("orphans", orphans.clone()).with("pending", pending.is_some());
            let cleanup = match (&orphans[..], pending) {
                ([], Some(_)) => Some("clears the mark of an interrupted run".to_owned()),
                ([], None) => None,
                (lost, _) => Some(format!("deletes key(s) {} minted by an interrupted run and held by no block", lost.join(", "))),
            };
            let held = block.as_ref().and_then(|b| b.data.get("aws_access_key_id")?.as_str().map(str::to_owned));
            let live = held.as_deref().and_then(|id| keys.iter().find(|k| k.access_key_id() == Some(id)));
            let why = match (&block, &held, live) {
                (_, Some(id), Some(key)) if key.status() == Some(&StatusType::Active) => {
                    attrs.set("id", id.as_str());
                    return Ok(match cleanup {
                        Some(cleanup) => Observation::update(cleanup, attrs),
                        None => Observation::reuse(format!("block {} holds this active key", self.block_name), attrs),
                    });
                }
                (_, Some(id), Some(_)) => format!("block {} holds key {id}, which is inactive", self.block_name),
                (_, Some(id), None) => format!("block {} holds key {id}, which no longer exists on user {}", self.block_name, self.user),
                (Some(_), None, _) => format!("block {} holds no access key id", self.block_name),
                (None, ..) => format!("block {} does not exist yet", self.block_name),
            };
            let kept: Vec<&AccessKeyMetadata> =
                keys.iter().filter(|k| !k.access_key_id().is_some_and(|id| orphans.iter().any(|o| o == id))).collect();
            if kept.len() >= KEYS_PER_USER {
                return Err(self.quota_error(&kept, &format!("a new access key is needed ({why})")));
            }
            let reason = match cleanup {
                Some(cleanup) => format!("{why}; {cleanup}"),
                None => why,
            };
            Ok(Observation::create(reason, attrs))
        }
        .boxed()
    }

    fn apply<'a>(&'a self, observed: &'a Observation, inputs: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let orphans: Vec<String> = serde_json::from_value(observed.attrs.value("orphans").cloned().unwrap_or_default()).unwrap_or_default();
            self.delete_keys(&orphans).await?;
            if observed.action != Action::Create {
                self.unmark().await?;
                return Ok(Attrs::new().with("orphans", Vec::<String>::new()).with("pending", false));
            }
            // A user created in this apply carries the mark from its creation.
            let marked = inputs.node(&self.user_node)?.value(PENDING_KEY_TAG).and_then(Value::as_i64);
            let since = match marked {
                Some(since) => since,
                None => {
                    let since = unix_seconds();
                    self.mark(since).await?;
                    since
                }
            };
            let (id, secret) = self.mint(since).await?;
            let mut attrs = Attrs::new().with("id", id).with("orphans", Vec::<String>::new()).with("pending", true);
            attrs.set_secret("secret", secret);
            Ok(attrs)
        }
        .boxed()
    }

    fn settle<'a>(&'a self, attrs: &'a Attrs) -> BoxFuture<'a, Result<()>> {
        async move {
            match attrs.value("pending").and_then(Value::as_bool) {
                Some(true) => self.unmark().await,
                _ => Ok(()),
            }
        }
        .boxed()
    }

    /// The key the block holds goes with the block: kept while the block or the key is in
    /// use elsewhere. Keys no block holds are left to the user's own teardown.
    fn observe_teardown<'a>(&'a self, _: &'a Upstream, teardown: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let (block, keys) = futures::join!(self.prefect.block_document(&self.block_slug, &self.block_name), self.user_keys());
            let (block, keys) = (block?, keys?);
            let Some(block) = block else { return Ok(Observation::gone(format!("block {} does not exist", self.block_name))) };
            let Some(id) = block.data.get("aws_access_key_id").and_then(Value::as_str) else {
                return Ok(Observation::gone(format!("block {} holds no access key id", self.block_name)));
            };
            if !keys.iter().any(|k| k.access_key_id() == Some(id)) {
                return Ok(Observation::gone(format!("key {id} of block {} no longer exists", self.block_name)));
            }
            let attrs = Attrs::new().with("id", id);
            Ok(match teardown.in_use([block.id.as_str(), id]) {
                Some(used) => Observation::keep(format!("{used}, with block {}", self.block_name), attrs),
                None => Observation::delete(format!("held by block {} only, which goes too", self.block_name), attrs),
            })
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, observed: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move {
            let id = observed.attrs.require_str(&self.user, "id")?.to_owned();
            self.delete_keys(&[id]).await
        }
        .boxed()
    }
}
