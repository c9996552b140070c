//! `aws.iam_access_key`: the IAM user's access key that the credentials block holds, minted
//! through the shared algorithm of [`crate::minted`]: this module says how IAM lists, marks
//! (a user tag, [`PENDING_KEY_TAG`]), mints and deletes keys, and that IAM allows two per user.

use std::sync::Arc;

use aws_sdk_iam::types::StatusType;
use futures::FutureExt;
use futures::future::BoxFuture;

use super::context::AwsContext;
use super::errors::{aws_error, code};
use super::iam::{PENDING_KEY_TAG, pending_key_tag};
use super::once::{Outcome, outcome};
use crate::error::{Error, Result};
use crate::minted::{Credential, Mark, MintFailure, Minted, Minter};
use crate::retry::{Settling, settle};
use crate::secret::Secret;

/// IAM's limit of access keys per user, which no quota raises.
pub const LIMIT: (usize, &str) = (2, "IAM's limit");

/// The access keys of one IAM user.
pub struct AccessKeys {
    /// The account.
    pub aws: Arc<AwsContext>,
    /// The IAM user's name.
    pub user: String,
}

impl AccessKeys {
    fn what(&self) -> String {
        format!("access key of IAM user {}", self.user)
    }
}

impl Minter for AccessKeys {
    fn label(&self) -> &'static str {
        "IAM access key"
    }

    fn noun(&self) -> &'static str {
        "key"
    }

    fn owner(&self) -> String {
        format!("IAM user {}", self.user)
    }

    fn limit(&self) -> (usize, &'static str) {
        LIMIT
    }

    fn quota_fix(&self) -> String {
        format!(
            "delete a key you no longer use (`aws iam delete-access-key --user-name {} --access-key-id <id>`), or pick another user with --set user=<name>, then run again",
            self.user
        )
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Credential>>> {
        async move {
            let keys = match self.aws.iam.list_access_keys().user_name(&self.user).into_paginator().items().send().try_collect().await {
                Ok(keys) => keys,
                Err(e) if code(&e).as_deref() == Some("NoSuchEntity") => Vec::new(),
                Err(e) => return Err(aws_error(&self.owner(), "iam:ListAccessKeys", e)),
            };
            Ok(keys
                .iter()
                .filter_map(|k| {
                    Some(Credential {
                        id: k.access_key_id()?.to_owned(),
                        created: k.create_date().map(|d| d.secs()),
                        active: k.status() == Some(&StatusType::Active),
                        hint: None,
                    })
                })
                .collect())
        }
        .boxed()
    }

    fn mark<'a>(&'a self, mark: &'a Mark) -> BoxFuture<'a, Result<()>> {
        async move {
            let tagged = self.aws.iam.tag_user().user_name(&self.user).tags(pending_key_tag(mark)).send().await;
            tagged.map(drop).map_err(|e| aws_error(&self.what(), "iam:TagUser", e))
        }
        .boxed()
    }

    fn unmark(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            let untagged = self.aws.iam.untag_user().user_name(&self.user).tag_keys(PENDING_KEY_TAG).send().await;
            untagged.map(drop).map_err(|e| aws_error(&self.what(), "iam:UntagUser", e))
        }
        .boxed()
    }

    /// IAM gives no way to tell whether a create whose answer was lost happened: such a
    /// failure is [`MintFailure::Unknown`]. A user created moments ago can be unknown to the
    /// IAM server that takes the create (`NoSuchEntity`, IAM's propagation delay): waited out.
    fn mint(&self) -> BoxFuture<'_, std::result::Result<Minted, MintFailure>> {
        async move {
            let waiting_for = format!("IAM to make user {} usable", self.user);
            let sent = settle(&waiting_for, || async {
                Ok(match self.aws.once.iam.create_access_key().user_name(&self.user).send().await {
                    Err(e) if code(&e).as_deref() == Some("NoSuchEntity") => Settling::NotYet(aws_error(&self.what(), "iam:CreateAccessKey", e)),
                    sent => Settling::Done(sent),
                })
            });
            let err = match sent.await.map_err(MintFailure::Failed)? {
                Ok(out) => {
                    let key = out.access_key().ok_or_else(|| MintFailure::Failed(Error::remote(self.what(), "iam:CreateAccessKey returned no key")))?;
                    return Ok(Minted { id: key.access_key_id().to_owned(), secret: Secret::new(key.secret_access_key()) });
                }
                Err(err) => err,
            };
            let kind = outcome(&err);
            let error = aws_error(&self.what(), "iam:CreateAccessKey", err);
            Err(match kind {
                Outcome::Refused => MintFailure::Refused(error),
                Outcome::Unknown => MintFailure::Unknown(error),
                Outcome::Failed => MintFailure::Failed(error),
            })
        }
        .boxed()
    }

    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        async move {
            match self.aws.iam.delete_access_key().user_name(&self.user).access_key_id(id).send().await {
                Ok(_) => Ok(()),
                Err(e) if code(&e).as_deref() == Some("NoSuchEntity") => Ok(()),
                Err(e) => Err(aws_error(&self.what(), "iam:DeleteAccessKey", e)),
            }
        }
        .boxed()
    }
}
