//! `aws.secret`: a Secrets Manager secret holding a value known at plan time (a worker's
//! Prefect API key). The value is compared with the live one, never shown: a changed key is an
//! update. A teardown deletes it with the shortest recovery window AWS allows; a run within
//! that window restores it instead of failing on the name.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;

use super::context::AwsContext;
use super::errors::{accept, aws_error, code};
use crate::engine::ownership::{decide, owned};
use crate::engine::reference::{Resolved, Secrets, resolve};
use crate::engine::{Action, Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::{Error, Result};

/// The shortest recovery window Secrets Manager allows, in days.
pub const RECOVERY_DAYS: i64 = 7;

const NOT_FOUND: &str = "ResourceNotFoundException";

/// A secret, by name, and the reference to its wanted value.
pub struct Secret {
    /// The account.
    pub aws: Arc<AwsContext>,
    /// The secret's name.
    pub name: String,
    /// What it is for: its description.
    pub description: String,
    /// The wanted value, a reference to a secret attribute.
    pub value: Value,
}

impl Secret {
    fn what(&self) -> String {
        format!("secret {}", self.name)
    }

    fn wanted(&self, known: &BTreeMap<String, Attrs>) -> Result<String> {
        match resolve(&self.value, known, Secrets::Expose)? {
            Resolved::Known(Value::String(value)) => Ok(value),
            _ => Err(Error::usage(self.what(), "its value is not a known string")),
        }
    }

    async fn describe(&self) -> Result<Option<aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput>> {
        match self.aws.secrets.describe_secret().secret_id(&self.name).send().await {
            Ok(out) => Ok(Some(out)),
            Err(e) if code(&e).as_deref() == Some(NOT_FOUND) => Ok(None),
            Err(e) => Err(aws_error(&self.what(), "secretsmanager:DescribeSecret", e)),
        }
    }
}

impl Node for Secret {
    fn label(&self) -> &'static str {
        "Secrets Manager secret"
    }

    fn observe<'a>(&'a self, upstream: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let (live, known) = futures::join!(self.describe(), upstream.attrs_for(&self.value));
            let (live, wanted) = (live?, self.wanted(&known?)?);
            let attrs = Attrs::new().with("name", self.name.as_str());
            let Some(live) = live else { return Ok(Observation::create("missing", attrs)) };
            let attrs = attrs.with("arn", live.arn().unwrap_or_default());
            if live.deleted_date().is_some() {
                return Ok(Observation::update("scheduled for deletion: restored, with the wanted value", attrs.hint("restore", true)));
            }
            let value = self.aws.secrets.get_secret_value().secret_id(&self.name).send().await;
            let value = value.map_err(|e| aws_error(&self.what(), "secretsmanager:GetSecretValue", e))?;
            Ok(match value.secret_string() == Some(wanted.as_str()) {
                true => Observation::reuse("holds the wanted value", attrs),
                false => Observation::update("holds another value", attrs),
            })
        }
        .boxed()
    }

    fn apply<'a>(&'a self, observed: &'a Observation, inputs: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let (what, secrets) = (self.what(), &self.aws.secrets);
            let value = self.wanted(inputs.all())?;
            if observed.action == Action::Create {
                let tags = self.aws.tags().into_iter().map(|(k, v)| aws_sdk_secretsmanager::types::Tag::builder().key(k).value(v).build());
                // The SDK's request token makes a retried create the same create.
                let out = secrets
                    .create_secret()
                    .name(&self.name)
                    .description(&self.description)
                    .secret_string(value)
                    .set_tags(Some(tags.collect()))
                    .send()
                    .await
                    .map_err(|e| aws_error(&what, "secretsmanager:CreateSecret", e))?;
                return Ok(Attrs::new().with("arn", out.arn().unwrap_or_default()));
            }
            if observed.attrs.flag("restore", false) {
                secrets.restore_secret().secret_id(&self.name).send().await.map_err(|e| aws_error(&what, "secretsmanager:RestoreSecret", e))?;
            }
            secrets.put_secret_value().secret_id(&self.name).secret_string(value).send().await.map_err(|e| aws_error(&what, "secretsmanager:PutSecretValue", e))?;
            Ok(Attrs::new().hint("restore", false))
        }
        .boxed()
    }

    fn observe_teardown<'a>(&'a self, _: &'a Upstream, teardown: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let live = self.describe().await?.filter(|s| s.deleted_date().is_none());
            let Some(live) = live else { return Ok(Observation::gone("does not exist")) };
            let arn = live.arn().unwrap_or_default();
            let owned = owned(live.tags().iter().filter_map(|t| Some((t.key()?, t.value()?))));
            let why = format!("created by pushpool; recoverable for {RECOVERY_DAYS} days, the shortest window AWS allows");
            Ok(decide(owned, teardown.in_use([self.name.as_str(), arn]), Attrs::new().with("arn", arn), why))
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, _: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move {
            let deleted = self.aws.secrets.delete_secret().secret_id(&self.name).recovery_window_in_days(RECOVERY_DAYS).send().await;
            accept(deleted, &[NOT_FOUND], &self.what(), "secretsmanager:DeleteSecret")
        }
        .boxed()
    }
}
