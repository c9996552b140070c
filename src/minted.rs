//! Secrets a cloud mints and shows once (an AWS access key, an Azure client secret, a GCP
//! service account key), kept only in a Prefect block: one algorithm for every cloud.
//!
//! Reused does not mean trusted: the credential the block holds is checked against the
//! owner's live credentials, and a block whose credential was deleted or disabled gets a new
//! one. The cloud's limit per owner is respected: when a new credential would exceed it, the
//! plan stops with the credentials and their ages instead of failing halfway.
//!
//! A secret shown once cannot be adopted the way a VPC can: a run killed between minting and
//! storing it leaves a credential nobody holds. So: **mark** the owner with the time before
//! minting, **mint**, **store** it in the block (the block node, which waits for this one),
//! **settle** (clear the mark) once the block holds it. A run that finds the mark deletes the
//! credentials created since then that no block of the type holds: those can only be ones
//! pushpool minted and lost. pushpool never deletes any other credential. A mint whose answer
//! was lost is never simply retried either: the orphans are cleaned up first.
//! [`Minter`] is what a cloud supplies; [`MintedSecret`] is the node kind around it.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;

use crate::blueprint::{Blueprint, Kind};
use crate::clock::unix_seconds;
use crate::engine::{Action, Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::{Error, Result};
use crate::prefect::client::{BlockDocument, OBFUSCATED};
use crate::prefect::context::PrefectContext;
use crate::retry::{ATTEMPTS, backoff};
use crate::secret::Secret;

/// The attribute (a hint) under which an owner node reports the time of its pending-mint
/// mark, read live or set when the owner was created with the mark.
pub const PENDING_SINCE: &str = "pending_since";


/// `words` with the pending mark `key=<since>` set (`Some`) or cleared (`None`), every other
/// word kept in its place: for owners whose marks are a list of `key=value` words (a GCP
/// service account's description, an Entra ID application's tags).
pub fn with_pending_word(words: &[String], key: &str, pending: Option<i64>) -> Vec<String> {
    let prefix = format!("{key}=");
    let mut kept: Vec<String> = words.iter().filter(|w| !w.starts_with(&prefix)).cloned().collect();
    kept.extend(pending.map(|since| format!("{prefix}{since}")));
    kept
}

/// Credentials created this long before the mark still count as the interrupted run's
/// (clocks of the cloud and of this machine apart).
const SKEW_SECONDS: i64 = 60;

/// One credential of the owner, as the cloud lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// Its id (access key id, key id).
    pub id: String,
    /// When it was created, in Unix seconds, if the cloud says.
    pub created: Option<i64>,
    /// Whether it works (not deactivated, disabled or expired).
    pub active: bool,
    /// The first characters of its secret, where the cloud shows them (Entra ID's `hint`).
    pub hint: Option<String>,
}

/// A credential just minted: its id and the secret shown this once.
pub struct Minted {
    /// The credential's id.
    pub id: String,
    /// The secret.
    pub secret: Secret,
}

/// How a mint attempt failed, which decides whether it may be tried again.
pub enum MintFailure {
    /// Refused without being done (throttled): try again as it is.
    Refused(Error),
    /// It may have been done (the answer was lost): clean up orphans before trying again.
    Unknown(Error),
    /// A real error: give up.
    Failed(Error),
}

/// What a cloud supplies for its minted credential.
pub trait Minter: Send + Sync {
    /// What the credential is called in the summary: "IAM access key".
    fn label(&self) -> &'static str;
    /// The credential in a sentence: "key".
    fn noun(&self) -> &'static str;
    /// The owner in a sentence: "IAM user prefect-ecs-user".
    fn owner(&self) -> String;
    /// The cloud's limit of credentials per owner, and whose limit it is ("IAM's limit").
    fn limit(&self) -> (usize, &'static str);
    /// How to free a credential or use another owner, for the quota error.
    fn quota_fix(&self) -> String;
    /// The owner's credentials (none when the owner does not exist).
    fn list(&self) -> BoxFuture<'_, Result<Vec<Credential>>>;
    /// Marks the owner: a credential is about to be minted at `since`.
    fn mark(&self, since: i64) -> BoxFuture<'_, Result<()>>;
    /// Clears the mark.
    fn unmark(&self) -> BoxFuture<'_, Result<()>>;
    /// Mints one credential.
    fn mint(&self) -> BoxFuture<'_, std::result::Result<Minted, MintFailure>>;
    /// Deletes a credential; one already gone is fine.
    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>>;
    /// The id of the credential a block's `holds` field names: the field's value itself where
    /// blocks hold the id (an access key id). A cloud whose blocks hold only the secret finds
    /// which of `credentials` it is, and answers None for a secret that no longer works.
    fn identify<'a>(&'a self, held: &'a str, _credentials: &'a [Credential]) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(async move { Ok(Some(held.to_owned())) })
    }
}

/// The node kind of a minted credential held by one block.
pub struct MintedSecret<M> {
    minter: M,
    prefect: Arc<PrefectContext>,
    block_slug: String,
    block_name: String,
    /// The owner's node, whose observation reports the mark ([`PENDING_SINCE`]).
    owner_node: String,
    /// The block data field (dotted path) holding the credential's id.
    holds: String,
}

impl<M: Minter> MintedSecret<M> {
    /// The credential `minter` mints, held by block `block_slug`/`block_name` in the field
    /// `holds` (which the block's blueprint node must declare), owned by node `owner_node`.
    pub fn new(minter: M, prefect: Arc<PrefectContext>, block_slug: &str, block_name: &str, owner_node: &str, holds: Option<&str>) -> Result<Self> {
        let holds = holds.ok_or_else(|| {
            Error::usage(format!("blueprint block {block_name}"), "holds a minted credential but names no `holds` field")
                .fix("add `holds = \"<data field of the credential's id>\"` to the block node")
        })?;
        Ok(Self {
            minter,
            prefect,
            block_slug: block_slug.to_owned(),
            block_name: block_name.to_owned(),
            owner_node: owner_node.to_owned(),
            holds: holds.to_owned(),
        })
    }

    /// The credential `minter` mints for the blueprint's block node `block` (named as `names`
    /// says), owned by node `owner`: what a cloud's key node kind is built as.
    pub fn for_block(minter: M, prefect: Arc<PrefectContext>, blueprint: &Blueprint, names: &BTreeMap<String, String>, node: &str, block: &str, owner: &str) -> Result<Self> {
        let settings = blueprint.node(block).and_then(|b| match &b.kind {
            Kind::PrefectBlock(settings) => Some(settings),
            _ => None,
        });
        let settings = settings.ok_or_else(|| Error::usage(format!("blueprint node '{node}'"), "`block` must name a prefect.block node"))?;
        let name = names.get(block).ok_or_else(|| Error::usage(format!("blueprint node '{node}'"), format!("node '{block}' has no name")))?;
        Self::new(minter, prefect, &settings.block_type, name, owner, settings.holds.as_deref())
    }

    /// The credential id a block's data holds.
    fn held_by(&self, data: &Value) -> Option<String> {
        let pointer = format!("/{}", self.holds.replace('.', "/"));
        data.pointer(&pointer)?.as_str().map(str::to_owned)
    }

    /// The credential id `block` holds. An id inside a secret field (a GCP key file's
    /// `private_key_id`) reads as [`OBFUSCATED`]: the block is read again with its secrets,
    /// for the id alone.
    async fn held(&self, block: Option<&BlockDocument>) -> Result<Option<String>> {
        let Some(block) = block else { return Ok(None) };
        match self.held_by(&block.data) {
            Some(id) if id == OBFUSCATED => {
                let revealed = self.prefect.client.block_document(&self.block_slug, &self.block_name, true).await?;
                Ok(revealed.and_then(|b| self.held_by(&b.data)))
            }
            held => Ok(held),
        }
    }

    /// The ids of the `credentials` every block of the type holds (read with secrets only when
    /// a held value is hidden in one).
    async fn held_by_any(&self, credentials: &[Credential]) -> Result<Vec<String>> {
        let mut blocks = self.prefect.client.block_documents_of_type(&self.block_slug, false).await?;
        if blocks.iter().any(|b| self.held_by(&b.data).as_deref() == Some(OBFUSCATED)) {
            blocks = self.prefect.client.block_documents_of_type(&self.block_slug, true).await?;
        }
        let mut ids = Vec::new();
        for held in blocks.iter().filter_map(|b| self.held_by(&b.data)) {
            ids.extend(self.minter.identify(&held, credentials).await?);
        }
        Ok(ids)
    }

    /// The owner's credentials created since `since` that no block of the type holds.
    async fn orphans(&self, since: i64) -> Result<Vec<String>> {
        let credentials = self.minter.list().await?;
        let held = self.held_by_any(&credentials).await?;
        Ok(credentials
            .into_iter()
            .filter(|c| c.created.is_some_and(|created| created >= since - SKEW_SECONDS))
            .filter(|c| !held.contains(&c.id))
            .map(|c| c.id)
            .collect())
    }

    async fn delete_all(&self, ids: &[String]) -> Result<()> {
        for id in ids {
            self.minter.delete(id).await?;
        }
        Ok(())
    }

    /// Mints, retrying what was refused, and cleaning up before retrying what may have been done.
    async fn mint(&self, since: i64) -> Result<Minted> {
        let mut attempt = 1;
        loop {
            let error = match self.minter.mint().await {
                Ok(minted) => return Ok(minted),
                Err(MintFailure::Failed(error)) => return Err(error),
                Err(MintFailure::Refused(error)) => error,
                Err(MintFailure::Unknown(error)) => {
                    if attempt < ATTEMPTS {
                        self.delete_all(&self.orphans(since).await?).await?;
                    }
                    error
                }
            };
            if attempt == ATTEMPTS {
                return Err(error);
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    }

    fn quota_error(&self, credentials: &[&Credential], why: &str) -> Error {
        let listed: Vec<String> = credentials
            .iter()
            .map(|c| {
                let age = c.created.map_or("?".to_owned(), |d| ((unix_seconds() - d).max(0) / 86_400).to_string());
                format!("{} ({}, {age} days old)", c.id, if c.active { "active" } else { "inactive" })
            })
            .collect();
        let (limit, whose) = self.minter.limit();
        Error::usage(
            self.minter.owner(),
            format!("{why}, but it already has {limit} {}s, {whose}: {}", self.minter.noun(), listed.join(", ")),
        )
        .fix(self.minter.quota_fix())
    }
}

impl<M: Minter> Node for MintedSecret<M> {
    fn label(&self) -> &'static str {
        self.minter.label()
    }

    fn observe<'a>(&'a self, upstream: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let (block, owner) = futures::join!(self.prefect.block_document(&self.block_slug, &self.block_name), upstream.get(&self.owner_node));
            let (block, owner) = (block?, owner?);
            // An owner yet to be created has no credentials.
            let credentials = if owner.action == Action::Create { Vec::new() } else { self.minter.list().await? };
            let pending = owner.attrs.value(PENDING_SINCE).and_then(Value::as_i64);
            let orphans = match pending {
                Some(since) => self.orphans(since).await?,
                None => Vec::new(),
            };
            let mut attrs = Attrs::new().hint("orphans", orphans.clone()).hint("pending", pending.is_some());
            let cleanup = match (&orphans[..], pending) {
                ([], Some(_)) => Some("clears the mark of an interrupted run".to_owned()),
                ([], None) => None,
                (lost, _) => Some(format!("deletes {}(s) {} minted by an interrupted run and held by no block", self.minter.noun(), lost.join(", "))),
            };
            // Some(None): the block holds a secret that is none of the owner's (no longer works).
            let held = match self.held(block.as_ref()).await? {
                Some(value) => Some(self.minter.identify(&value, &credentials).await?),
                None => None,
            };
            let live = held.as_ref().and_then(|h| h.as_deref()).and_then(|id| credentials.iter().find(|c| c.id == id));
            let (name, noun) = (&self.block_name, self.minter.noun());
            let why = match (&block, &held, live) {
                (_, Some(Some(id)), Some(credential)) if credential.active => {
                    attrs.set("id", id.as_str());
                    return Ok(match cleanup {
                        Some(cleanup) => Observation::update(cleanup, attrs),
                        None => Observation::reuse(format!("block {name} holds this active {noun}"), attrs),
                    });
                }
                (_, Some(Some(id)), Some(_)) => format!("block {name} holds {noun} {id}, which is inactive"),
                (_, Some(Some(id)), None) => format!("block {name} holds {noun} {id}, which no longer exists on {}", self.minter.owner()),
                (_, Some(None), _) => format!("block {name} holds a {noun} that no longer works"),
                (Some(_), None, _) => format!("block {name} holds no {noun}"),
                (None, ..) => format!("block {name} does not exist yet"),
            };
            let kept: Vec<&Credential> = credentials.iter().filter(|c| !orphans.contains(&c.id)).collect();
            if kept.len() >= self.minter.limit().0 {
                return Err(self.quota_error(&kept, &format!("a new {noun} is needed ({why})")));
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
            self.delete_all(&observed.attrs.strings("orphans")).await?;
            if observed.action != Action::Create {
                self.minter.unmark().await?;
                return Ok(Attrs::new().hint("orphans", Vec::<String>::new()).hint("pending", false));
            }
            // An owner created in this apply carries the mark from its creation.
            let since = match inputs.node(&self.owner_node)?.value(PENDING_SINCE).and_then(Value::as_i64) {
                Some(since) => since,
                None => {
                    let since = unix_seconds();
                    self.minter.mark(since).await?;
                    since
                }
            };
            let minted = self.mint(since).await?;
            let mut attrs = Attrs::new().with("id", minted.id).hint("orphans", Vec::<String>::new()).hint("pending", true);
            attrs.set_secret("secret", minted.secret);
            Ok(attrs)
        }
        .boxed()
    }

    fn settle<'a>(&'a self, attrs: &'a Attrs) -> BoxFuture<'a, Result<()>> {
        async move {
            match attrs.flag("pending", false) {
                true => self.minter.unmark().await,
                false => Ok(()),
            }
        }
        .boxed()
    }

    /// The credential the block holds goes with the block: kept while the block or the
    /// credential is in use elsewhere. Credentials no block holds are left to the owner's own
    /// teardown.
    fn observe_teardown<'a>(&'a self, _: &'a Upstream, teardown: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let (block, credentials) = futures::join!(self.prefect.block_document(&self.block_slug, &self.block_name), self.minter.list());
            let (block, credentials) = (block?, credentials?);
            let (name, noun) = (&self.block_name, self.minter.noun());
            let Some(block) = block else { return Ok(Observation::gone(format!("block {name} does not exist"))) };
            let Some(held) = self.held(Some(&block)).await? else { return Ok(Observation::gone(format!("block {name} holds no {noun}"))) };
            let Some(id) = self.minter.identify(&held, &credentials).await? else {
                return Ok(Observation::gone(format!("the {noun} of block {name} no longer works")));
            };
            if !credentials.iter().any(|c| c.id == id) {
                return Ok(Observation::gone(format!("{noun} {id} of block {name} no longer exists")));
            }
            let attrs = Attrs::new().with("id", id.as_str());
            Ok(match teardown.in_use([block.id.as_str(), id.as_str()]) {
                Some(used) => Observation::keep(format!("{used}, with block {name}"), attrs),
                None => Observation::delete(format!("held by block {name} only, which goes too"), attrs),
            })
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, observed: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move { self.minter.delete(observed.attrs.require_str(&self.block_name, "id")?).await }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::with_pending_word;

    #[test]
    fn the_pending_word_is_set_replaced_and_cleared_and_the_others_stay() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let marked = with_pending_word(&words(&["managed-by=pushpool", "x"]), "pending", Some(5));
        assert_eq!(marked, words(&["managed-by=pushpool", "x", "pending=5"]));
        assert_eq!(with_pending_word(&marked, "pending", Some(7)), words(&["managed-by=pushpool", "x", "pending=7"]));
        assert_eq!(with_pending_word(&marked, "pending", None), words(&["managed-by=pushpool", "x"]));
    }
}
