//! `prefect.block`: a credentials block whose data comes from other nodes' attributes and
//! from the clouds' (a local token). A secret known at plan time is compared with the stored
//! block, read with its secrets for that alone: a changed token is an update, named by field,
//! never shown.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::engine::reference::{Resolved, Secrets, absent_optional, names_secret, resolve};
use crate::engine::{Action, Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::{Error, Result};
use crate::prefect::context::PrefectContext;

/// A block document of type `slug` named `name`, with `data` (a template of references).
pub struct Block {
    /// The Prefect API.
    pub prefect: Arc<PrefectContext>,
    /// The block type's slug, e.g. "aws-credentials".
    pub slug: String,
    /// The document's name.
    pub name: String,
    /// The wanted data, with `@node.attr` references.
    pub data: Value,
    /// The fix when the server lacks the block type.
    pub when_type_missing: String,
}

impl Block {
    fn attrs(&self, id: &str, type_id: &str, schema_id: &str) -> Attrs {
        Attrs::new().with("id", id).with("name", self.name.as_str()).with("block_type_id", type_id).with("block_schema_id", schema_id)
    }
}

impl Node for Block {
    fn label(&self) -> &'static str {
        "block"
    }

    fn observe<'a>(&'a self, upstream: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            // Data naming a secret known now (a local token) is compared with the stored one's,
            // read with its secrets; other data needs no secret read. An existing document names
            // its type and schema; only a new one needs the type looked up and its newest schema
            // chosen (while the data's sources are still being observed).
            let document_and_ids = async {
                let document = match names_secret(&self.data, &upstream.context) {
                    true => self.prefect.client.block_document(&self.slug, &self.name, true).await?,
                    false => self.prefect.block_document(&self.slug, &self.name).await?,
                };
                let ids = match &document {
                    Some(document) => (document.block_type_id.clone(), document.block_schema_id.clone()),
                    None => self.prefect.block_type_and_schema(&self.slug, &self.when_type_missing).await?,
                };
                Ok::<_, Error>((document, ids))
            };
            let (document_and_ids, known) = futures::join!(document_and_ids, upstream.attrs_for(&self.data));
            let ((document, (type_id, schema_id)), known) = (document_and_ids?, known?);
            let Some(document) = document else {
                let attrs = Attrs::new().with("name", self.name.as_str()).with("block_type_id", type_id).with("block_schema_id", schema_id);
                return Ok(Observation::create("missing", attrs));
            };
            let attrs = self.attrs(&document.id, &type_id, &schema_id);
            // An optional value of a node about to be created (a key file to be minted) is not
            // known yet, but will be: the block takes it.
            let mut coming = Vec::new();
            for (node, attr) in absent_optional(&self.data, &known) {
                if !upstream.context.contains_key(&node) && upstream.get(&node).await?.action == Action::Create {
                    coming.push(format!("{node}.{attr}"));
                }
            }
            if !coming.is_empty() {
                return Ok(Observation::update(format!("takes new values: {}", coming.join(", ")), attrs));
            }
            // The secrets go into the comparison only: the reason names fields, not values.
            Ok(match resolve(&self.data, &known, Secrets::Expose)? {
                Resolved::Unknown(pending) => Observation::update(format!("takes new values: {}", pending.join(", ")), attrs),
                Resolved::Known(wanted) => {
                    let differing = differing_fields(&wanted, &document.data, "");
                    if differing.is_empty() {
                        Observation::reuse("exists with the wanted data", attrs)
                    } else {
                        Observation::update(format!("fields differ: {}", differing.join(", ")), attrs)
                    }
                }
            })
        }
        .boxed()
    }

    fn apply<'a>(&'a self, observed: &'a Observation, inputs: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let Resolved::Known(data) = resolve(&self.data, inputs.all(), Secrets::Expose)? else {
                return Err(Error::remote(format!("block '{}'", self.name), "its data is still unknown after its dependencies"));
            };
            let attrs = &observed.attrs;
            let type_id = attrs.require_str(&self.name, "block_type_id")?;
            let schema_id = attrs.require_str(&self.name, "block_schema_id")?;
            let id = match attrs.str("id") {
                Some(id) => {
                    self.prefect.client.update_block_document(id, schema_id, data).await?;
                    id.to_owned()
                }
                None => self.prefect.client.create_block_document(&self.slug, &self.name, type_id, schema_id, data).await?,
            };
            Ok(self.attrs(&id, type_id, schema_id))
        }
        .boxed()
    }

    fn observe_teardown<'a>(&'a self, _: &'a Upstream, teardown: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let Some(document) = self.prefect.block_document(&self.slug, &self.name).await? else {
                return Ok(Observation::gone("does not exist"));
            };
            let attrs = Attrs::new().with("id", document.id.as_str());
            Ok(match teardown.in_use([document.id.as_str()]) {
                Some(used) => Observation::keep(used, attrs),
                None => Observation::delete("no other pool uses it", attrs),
            })
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, observed: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move { self.prefect.client.delete_block_document(observed.attrs.require_str(&self.name, "id")?).await }.boxed()
    }
}

/// The dotted paths of the fields of `wanted` whose value in `existing` differs; fields the
/// block has and pushpool does not set are not compared.
fn differing_fields(wanted: &Value, existing: &Value, prefix: &str) -> Vec<String> {
    let Value::Object(wanted) = wanted else {
        return if wanted == existing { vec![] } else { vec![prefix.to_owned()] };
    };
    wanted
        .iter()
        .flat_map(|(key, value)| {
            let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
            differing_fields(value, existing.get(key).unwrap_or(&json!(null)), &path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_wanted_fields_are_compared() {
        let wanted = json!({"region_name": "us-east-1", "aws_client_parameters": {"endpoint_url": "http://x"}});
        let existing = json!({"region_name": "eu-west-1", "profile_name": null, "aws_client_parameters": {"endpoint_url": "http://x", "verify": true}});
        assert_eq!(differing_fields(&wanted, &existing, ""), ["region_name"]);
        assert!(differing_fields(&json!({}), &existing, "").is_empty());
    }
}
