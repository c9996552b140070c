//! `aws.iam_role_policy`: an inline policy pushpool adds to a role another node manages (the
//! shared task execution role may read one worker's API key). Inline policies take no tags:
//! the name, which carries the pool's, is the ownership mark.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;

use super::context::AwsContext;
use super::errors::{accept, aws_error, code};
use super::policy_doc::{drift, parse_live};
use crate::engine::reference::{Resolved, Secrets, resolve};
use crate::engine::{Action, Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::{Error, Result};

const NO_SUCH_ENTITY: &str = "NoSuchEntity";

/// An inline policy of a role.
pub struct RolePolicy {
    /// The account.
    pub aws: Arc<AwsContext>,
    /// The policy's name on the role.
    pub name: String,
    /// The role's name.
    pub role: String,
    /// The role's node.
    pub role_node: String,
    /// The document, with `@node.attr` references.
    pub document: Value,
}

impl RolePolicy {
    fn what(&self) -> String {
        format!("inline policy {} of IAM role {}", self.name, self.role)
    }

    fn wanted(&self, known: &BTreeMap<String, Attrs>) -> Result<Resolved> {
        resolve(&self.document, known, Secrets::Refuse)
    }

    /// The live document, if the role has the policy: from the account's inventory when the
    /// run read it, else by name.
    async fn live(&self) -> Result<Option<Value>> {
        if let Some(details) = self.aws.iam_details().await? {
            return details.role_inline_policy(&self.role, &self.name).map(parse_live).transpose();
        }
        match self.aws.iam.get_role_policy().role_name(&self.role).policy_name(&self.name).send().await {
            Ok(out) => parse_live(out.policy_document()).map(Some),
            Err(e) if code(&e).as_deref() == Some(NO_SUCH_ENTITY) => Ok(None),
            Err(e) => Err(aws_error(&self.what(), "iam:GetRolePolicy", e)),
        }
    }
}

impl Node for RolePolicy {
    fn label(&self) -> &'static str {
        "IAM inline policy"
    }

    fn observe<'a>(&'a self, upstream: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let attrs = Attrs::new().with("name", self.name.as_str());
            if upstream.get(&self.role_node).await?.action == Action::Create {
                return Ok(Observation::create(format!("IAM role {} is created too", self.role), attrs));
            }
            let (live, known) = futures::join!(self.live(), upstream.attrs_for(&self.document));
            let (live, wanted) = (live?, self.wanted(&known?)?);
            let Some(live) = live else { return Ok(Observation::create("missing", attrs)) };
            Ok(match drift(&live, &wanted) {
                Some(why) => Observation::update(why, attrs),
                None => Observation::reuse("exists as wanted", attrs),
            })
        }
        .boxed()
    }

    fn apply<'a>(&'a self, _: &'a Observation, inputs: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let what = self.what();
            let Resolved::Known(document) = self.wanted(inputs.all())? else {
                return Err(Error::remote(what, "its document is still unknown after its dependencies"));
            };
            let put = self.aws.iam.put_role_policy().role_name(&self.role).policy_name(&self.name).policy_document(document.to_string()).send().await;
            put.map_err(|e| aws_error(&what, "iam:PutRolePolicy", e))?;
            Ok(Attrs::new())
        }
        .boxed()
    }

    fn observe_teardown<'a>(&'a self, _: &'a Upstream, _: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            Ok(match self.live().await? {
                Some(_) => Observation::delete("pushpool's, by its name, which carries the pool's", Attrs::new()),
                None => Observation::gone("does not exist"),
            })
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, _: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move {
            let deleted = self.aws.iam.delete_role_policy().role_name(&self.role).policy_name(&self.name).send().await;
            accept(deleted, &[NO_SUCH_ENTITY], &self.what(), "iam:DeleteRolePolicy")
        }
        .boxed()
    }
}
