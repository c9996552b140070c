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
//! pushpool minted and lost. A mint whose answer was lost is never simply retried either: the
//! orphans are cleaned up first.
//!
//! No pile-up: when the credential the block held is dead (deactivated, disabled, expired), the
//! mark also names it ([`Mark::replaces`]) and settle deletes it once the block holds the new
//! one; a run killed in between finds it in the mark, held by no block, and deletes it then.
//! Only the credential the pool's own block held counts as pushpool's: a dead credential no
//! block held is the owner's business and is never deleted. When the owner is at the cloud's
//! limit with the dead one among its credentials (IAM's hard two), the dead one is deleted
//! before the mint instead: it gives no access, so the block loses nothing it could use.
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

/// The attribute (a hint) under which an owner node reports the text of its pending-mint
/// [`Mark`], read live or set when the owner was created with the mark.
pub const PENDING: &str = "pending_mark";

/// The hint under which a credential's observation reports how many of its owner's
/// credentials remain once an interrupted run's leftovers are gone: with the dead ones the
/// mints replace (`replaces`), what a run that mints several for one owner counts against the
/// owner's limit (see `provision::limits`).
pub const REMAINING: &str = "remaining";

/// The pending-mint mark an owner carries while a credential is minted: when the mint began,
/// and the dead credential the block held that the new one replaces, if any. Written as
/// `<since>` or `<since>:<id>` (a tag value, a description word and an Entra ID tag all take
/// it); the id is what lets a run killed after the block write, before the dead credential
/// was deleted, finish the job: it is pushpool's, since the block held it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// When the mint began, in Unix seconds.
    pub since: i64,
    /// The id of the dead credential the mint replaces.
    pub replaces: Option<String>,
}

impl Mark {
    /// A mark of a mint beginning at `since` that replaces nothing.
    pub fn at(since: i64) -> Self {
        Self { since, replaces: None }
    }

    /// The mark written as `text`; None for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let (since, replaces) = match text.split_once(':') {
            Some((since, id)) if !id.is_empty() => (since, Some(id.to_owned())),
            Some(_) => return None,
            None => (text, None),
        };
        Some(Self { since: since.parse().ok()?, replaces })
    }

    /// The mark an owner node's attributes report ([`PENDING`]).
    pub fn of(attrs: &Attrs) -> Option<Self> {
        attrs.str(PENDING).and_then(Self::parse)
    }
}

impl std::fmt::Display for Mark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.replaces {
            Some(id) => write!(f, "{}:{id}", self.since),
            None => write!(f, "{}", self.since),
        }
    }
}

/// `words` with the pending mark `key=<mark>` set (`Some`) or cleared (`None`), every other
/// word kept in its place: for owners whose marks are a list of `key=value` words (a GCP
/// service account's description, an Entra ID application's tags).
pub fn with_pending_word(words: &[String], key: &str, pending: Option<&Mark>) -> Vec<String> {
    let prefix = format!("{key}=");
    let mut kept: Vec<String> = words.iter().filter(|w| !w.starts_with(&prefix)).cloned().collect();
    kept.extend(pending.map(|mark| format!("{prefix}{mark}")));
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
    /// Marks the owner: a credential is about to be minted (see [`Mark`]).
    fn mark<'a>(&'a self, mark: &'a Mark) -> BoxFuture<'a, Result<()>>;
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
    /// The owner's node, whose observation reports the mark ([`PENDING`]).
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
        Ok(Self { minter, prefect, block_slug: block_slug.to_owned(), block_name: block_name.to_owned(), owner_node: owner_node.to_owned(), holds: holds.to_owned() })
    }

    /// The credential `minter` mints for the blueprint's block node `block` (named as `names`
    /// says), owned by node `owner`: what a cloud's key node kind is built as.
    pub fn for_block(
        minter: M,
        prefect: Arc<PrefectContext>,
        blueprint: &Blueprint,
        names: &BTreeMap<String, String>,
        node: &str,
        block: &str,
        owner: &str,
    ) -> Result<Self> {
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

    /// What the run that set `mark` left behind and no block of the type holds: the owner's
    /// credentials created since the mark (minted and lost), and the dead one it replaced.
    async fn leftovers(&self, mark: &Mark) -> Result<Vec<String>> {
        let credentials = self.minter.list().await?;
        let held = self.held_by_any(&credentials).await?;
        let left = |c: &Credential| c.created.is_some_and(|created| created >= mark.since - SKEW_SECONDS) || mark.replaces.as_ref() == Some(&c.id);
        Ok(credentials.into_iter().filter(|c| left(c) && !held.contains(&c.id)).map(|c| c.id).collect())
    }

    /// The plan's words for cleaning up after the run that set `mark`, if there is anything to do.
    fn cleanup(&self, mark: Option<&Mark>, leftovers: &[String]) -> Option<String> {
        let mark = mark?;
        let noun = self.minter.noun();
        let replaced = mark.replaces.as_ref().filter(|id| leftovers.contains(id));
        let minted: Vec<&str> = leftovers.iter().filter(|id| Some(*id) != replaced).map(String::as_str).collect();
        let mut words = Vec::new();
        if !minted.is_empty() {
            words.push(format!("deletes {noun}(s) {} minted by an interrupted run and held by no block", minted.join(", ")));
        }
        if let Some(id) = replaced {
            words.push(format!("deletes dead {noun} {id}, which an interrupted run replaced in block {}", self.block_name));
        }
        Some(if words.is_empty() { "clears the mark of an interrupted run".to_owned() } else { words.join("; ") })
    }

    async fn delete_all(&self, ids: &[String]) -> Result<()> {
        for id in ids {
            self.minter.delete(id).await?;
        }
        Ok(())
    }

    /// Mints, retrying what was refused, and cleaning up before retrying what may have been done.
    async fn mint(&self, mark: &Mark) -> Result<Minted> {
        let mut attempt = 1;
        loop {
            let error = match self.minter.mint().await {
                Ok(minted) => return Ok(minted),
                Err(MintFailure::Failed(error)) => return Err(error),
                Err(MintFailure::Refused(error)) => error,
                Err(MintFailure::Unknown(error)) => {
                    if attempt < ATTEMPTS {
                        self.delete_all(&self.leftovers(mark).await?).await?;
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
        Error::usage(self.minter.owner(), format!("{why}, but it already has {limit} {}s, {whose}: {}", self.minter.noun(), listed.join(", "))).fix(self.minter.quota_fix())
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
            let mark = Mark::of(&owner.attrs);
            let leftovers = match &mark {
                Some(mark) => self.leftovers(mark).await?,
                None => Vec::new(),
            };
            let remaining: Vec<&Credential> = credentials.iter().filter(|c| !leftovers.contains(&c.id)).collect();
            let mut attrs = Attrs::new().hint("orphans", leftovers.clone()).hint("pending", mark.is_some()).hint(REMAINING, remaining.len());
            let cleanup = self.cleanup(mark.as_ref(), &leftovers);
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
            // The dead credential the block held is pushpool's, and goes: it does not count.
            let dead = live.filter(|c| !c.active).map(|c| c.id.clone());
            let kept: Vec<&Credential> = remaining.iter().copied().filter(|c| Some(&c.id) != dead.as_ref()).collect();
            let (limit, whose) = self.minter.limit();
            if kept.len() >= limit {
                return Err(self.quota_error(&kept, &format!("a new {noun} is needed ({why})")));
            }
            let first = dead.is_some() && remaining.len() >= limit;
            let replacing = dead.as_ref().map(|_| match first {
                true => format!("the dead {noun} is deleted before the new one is minted, as {whose} leaves no room beside it"),
                false => format!("the dead {noun} is deleted once the block holds the new one"),
            });
            let attrs = attrs.hint("replaces", dead).hint("delete_first", first);
            let reason = [Some(why), replacing, cleanup].into_iter().flatten().collect::<Vec<_>>().join("; ");
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
            // An owner created in this apply carries the mark from its creation; one marked by an
            // interrupted run keeps its time (so its orphans still count), with what this mint replaces.
            let carried = Mark::of(inputs.node(&self.owner_node)?);
            let replaces = observed.attrs.str("replaces").map(str::to_owned);
            let mark = Mark { since: carried.as_ref().map_or_else(unix_seconds, |m| m.since), replaces };
            if carried.as_ref() != Some(&mark) {
                self.minter.mark(&mark).await?;
            }
            // Deleted first, it is not deleted again at settle.
            let mut replaces = mark.replaces.clone();
            if let Some(dead) = replaces.take_if(|_| observed.attrs.flag("delete_first", false)) {
                self.minter.delete(&dead).await?;
            }
            let minted = self.mint(&mark).await?;
            let mut attrs = Attrs::new().with("id", minted.id).hint("orphans", Vec::<String>::new()).hint("pending", true).hint("replaces", replaces);
            attrs.set_secret("secret", minted.secret);
            Ok(attrs)
        }
        .boxed()
    }

    /// The block holds the new credential: the dead one it replaces goes, then the mark.
    fn settle<'a>(&'a self, attrs: &'a Attrs) -> BoxFuture<'a, Result<()>> {
        async move {
            if !attrs.flag("pending", false) {
                return Ok(());
            }
            if let Some(dead) = attrs.str("replaces") {
                self.minter.delete(dead).await?;
            }
            self.minter.unmark().await
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
    use super::{Mark, with_pending_word};

    #[test]
    fn the_pending_word_is_set_replaced_and_cleared_and_the_others_stay() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let marked = with_pending_word(&words(&["managed-by=pushpool", "x"]), "pending", Some(&Mark::at(5)));
        assert_eq!(marked, words(&["managed-by=pushpool", "x", "pending=5"]));
        let replacing = Mark { since: 7, replaces: Some("AKIA1".into()) };
        assert_eq!(with_pending_word(&marked, "pending", Some(&replacing)), words(&["managed-by=pushpool", "x", "pending=7:AKIA1"]));
        assert_eq!(with_pending_word(&marked, "pending", None), words(&["managed-by=pushpool", "x"]));
    }

    #[test]
    fn a_mark_reads_back_what_it_writes_and_an_old_mark_is_a_time_alone() {
        let replacing = Mark { since: 1_700_000_000, replaces: Some("0123abcd".into()) };
        assert_eq!(Mark::parse(&replacing.to_string()), Some(replacing));
        assert_eq!(Mark::parse("1700000000"), Some(Mark::at(1_700_000_000)));
        assert_eq!(Mark::parse("1700000000:"), None);
        assert_eq!(Mark::parse("soon"), None);
    }
}
