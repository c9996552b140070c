//! `modal.secret`: a Modal Secret filled from a Prefect block's data (the ECR pull key Modal
//! pulls flow images with), written through the `modal` client ([`ModalCli`]).
//!
//! Modal never shows a Secret's values, so what pushpool wrote is recorded beside the block,
//! in a Prefect variable: the pool it was written for and the block's values that are not
//! secret (the key id, the region). A secret value changes only with the id beside it, so the
//! record tells whether the Secret still holds what the block holds, and a re-run whose key
//! is still valid does not touch it. The record is marked pending before the Secret is written
//! and settled after: a run killed in between rewrites it. A Secret pushpool has no record of
//! is someone else's: it is never overwritten, nor deleted.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::cli::ModalCli;
use crate::engine::{Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::{Error, Result};
use crate::prefect::client::OBFUSCATED;
use crate::prefect::context::PrefectContext;
use crate::prefect::record::Records;
use crate::secret::Secret;

/// The records of the Modal Secrets pushpool wrote, by environment and name.
const RECORDS: Records = Records::new("pushpool_modal_secret");

/// A Modal Secret whose values are fields of a block's data.
pub struct ModalSecret {
    /// The Secret's name.
    pub name: String,
    /// The blueprint node's id, for `--set` in errors.
    pub node_id: String,
    /// The Modal environment the client works in (None: the workspace's default).
    pub environment: Option<String>,
    /// The pool it is written for.
    pub pool: String,
    /// The Prefect API, where the block and the record are.
    pub prefect: Arc<PrefectContext>,
    /// The block's type slug.
    pub block_slug: String,
    /// The block's name.
    pub block_name: String,
    /// The block's node, which this one waits for.
    pub block_node: String,
    /// Each key of the Secret, with the dotted field of the block's data that fills it.
    pub values: BTreeMap<String, String>,
}

impl ModalSecret {
    fn what(&self) -> String {
        format!("Modal Secret {}", self.name)
    }

    fn record_key(&self) -> String {
        format!("{}/{}", self.environment.as_deref().unwrap_or_default(), self.name)
    }

    fn environment(&self) -> String {
        self.environment.as_ref().map_or_else(|| "the default Modal environment".to_owned(), |e| format!("Modal environment '{e}'"))
    }

    /// The field of `data` that fills `key`, if it is a string.
    fn field<'a>(&self, data: &'a Value, key: &str) -> Option<&'a str> {
        data.pointer(&format!("/{}", self.values[key].replace('.', "/")))?.as_str()
    }

    /// The values that are not secret, from a block read without its secrets.
    fn public_values(&self, data: &Value) -> BTreeMap<String, String> {
        self.values.keys().filter_map(|key| Some((key.clone(), self.field(data, key).filter(|v| *v != OBFUSCATED)?.to_owned()))).collect()
    }

    /// Every value, from a block read with its secrets.
    fn all_values(&self, data: &Value) -> Result<BTreeMap<String, Secret>> {
        self.values
            .keys()
            .map(|key| match self.field(data, key) {
                Some(value) => Ok((key.clone(), Secret::new(value))),
                None => Err(Error::remote(self.what(), format!("block {} has no `{}` for {key}", self.block_name, self.values[key]))),
            })
            .collect()
    }

    fn record(&self, public: &BTreeMap<String, String>, pending: bool) -> Value {
        json!({"secret": self.name, "environment": self.environment, "pool": self.pool, "values": public, "pending": pending})
    }
}

/// The pool a record says the Secret was written for.
fn owner(record: &Option<Value>) -> Option<&str> {
    record.as_ref()?["pool"].as_str()
}

impl Node for ModalSecret {
    fn label(&self) -> &'static str {
        "Modal Secret"
    }

    fn observe<'a>(&'a self, upstream: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let what = self.what();
            let cli = ModalCli::find(&what)?;
            let (client, key) = (&self.prefect.client, self.record_key());
            let (names, record, block, block_change) = futures::join!(
                cli.secret_names(),
                RECORDS.read(client, &key),
                self.prefect.block_document(&self.block_slug, &self.block_name),
                upstream.get(&self.block_node)
            );
            let (exists, record, block, block_change) = (names?.contains(&self.name), record?, block?, block_change?);
            let another_name = format!("--set {}=<another name>", self.node_id);
            if let Some(other) = owner(&record).filter(|pool| *pool != self.pool) {
                let cause = format!("in {}, holds what pushpool wrote for work pool '{other}'", self.environment());
                return Err(Error::usage(what, cause).fix(format!("give this pool a Secret of its own: {another_name}")));
            }
            let attrs = Attrs::new().with("name", self.name.as_str());
            let block_name = &self.block_name;
            Ok(match (exists, record) {
                (false, _) => Observation::create(format!("missing in {}", self.environment()), attrs),
                (true, None) => {
                    let cause = format!("exists in {}, and pushpool did not write it: its values are someone else's", self.environment());
                    let fix = format!("give the pool another Secret: {another_name}; or, if nothing uses it, delete it (`modal secret delete {}`)", self.name);
                    return Err(Error::usage(what, cause).fix(fix));
                }
                (true, Some(record)) if record["pending"] == true => Observation::update("a run writing it was interrupted", attrs),
                (true, Some(_)) if block_change.action.writes() => Observation::update(format!("takes the new values of block {block_name}"), attrs),
                (true, Some(record)) => {
                    let wanted = block.map(|b| self.public_values(&b.data)).unwrap_or_default();
                    let held: BTreeMap<String, String> = serde_json::from_value(record["values"].clone()).unwrap_or_default();
                    let differing: Vec<&String> = self.values.keys().filter(|key| wanted.get(*key) != held.get(*key)).collect();
                    match differing.is_empty() {
                        true => Observation::reuse(format!("holds the values of block {block_name} (as recorded when pushpool wrote it)"), attrs),
                        false => {
                            let keys: Vec<&str> = differing.iter().map(|k| k.as_str()).collect();
                            Observation::update(format!("{} differ from block {block_name}", keys.join(", ")), attrs)
                        }
                    }
                }
            })
        }
        .boxed()
    }

    fn apply<'a>(&'a self, _: &'a Observation, _: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let what = self.what();
            let cli = ModalCli::find(&what)?;
            let client = &self.prefect.client;
            let (public, full) =
                futures::join!(client.block_document(&self.block_slug, &self.block_name, false), client.block_document(&self.block_slug, &self.block_name, true));
            let missing = || Error::remote(&what, format!("block {} is missing after it was applied", self.block_name));
            let (public, full) = (public?.ok_or_else(missing)?, full?.ok_or_else(missing)?);
            let (public, values) = (self.public_values(&public.data), self.all_values(&full.data)?);
            let key = self.record_key();
            RECORDS.ensure(client, &key, &self.record(&public, true)).await?;
            cli.write_secret(&self.name, &values).await?;
            RECORDS.ensure(client, &key, &self.record(&public, false)).await?;
            Ok(Attrs::new().with("name", self.name.as_str()))
        }
        .boxed()
    }

    /// Deleted with the pool it was written for; one pushpool did not write stays.
    fn observe_teardown<'a>(&'a self, _: &'a Upstream, _: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let record = RECORDS.read(&self.prefect.client, &self.record_key()).await?;
            let attrs = Attrs::new().with("name", self.name.as_str());
            match owner(&record) {
                Some(pool) if pool != self.pool => return Ok(Observation::keep(format!("pushpool wrote it for work pool '{pool}'"), attrs)),
                None => return Ok(Observation::gone("pushpool has no record of writing it, so it is left as it is")),
                Some(_) => {}
            }
            let exists = ModalCli::find(&self.what())?.secret_names().await?.contains(&self.name);
            Ok(match exists {
                true => Observation::delete(format!("pushpool wrote it for this pool, in {}", self.environment()), attrs.hint("exists", true)),
                false => Observation::delete("already deleted in Modal; pushpool's record of it goes", attrs.hint("exists", false)),
            })
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, observed: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move {
            if observed.attrs.flag("exists", false) {
                ModalCli::find(&self.what())?.delete_secret(&self.name).await?;
            }
            RECORDS.forget(&self.prefect.client, &self.record_key()).await
        }
        .boxed()
    }
}
