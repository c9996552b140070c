//! `prefect.work_pool`: the pool itself, with its job variable defaults filled in.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Map, Value};

use crate::engine::reference::{Resolved, Secrets, resolve};
use crate::engine::{Action, Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::{Error, Result};
use crate::prefect::context::PrefectContext;
use crate::request::{PoolMode, PoolRequest};

/// Shown for a job variable whose value exists only once apply has created its resource.
pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";

/// The work pool of the run.
pub struct WorkPoolNode {
    /// The Prefect API.
    pub prefect: Arc<PrefectContext>,
    /// The pool, its type and whether this run creates it.
    pub request: PoolRequest,
    /// The worker type whose default template a new pool starts from when the pool type has
    /// none of its own (`ecs` for `ecs:push` on a self-hosted server).
    pub template_type: String,
    /// Job variable name → wanted default, with `@node.attr` references.
    pub job_variables: Value,
    /// The job variables set only when the pool's template has them (Coiled's `image`).
    pub optional: Vec<String>,
}

impl WorkPoolNode {
    fn what(&self) -> String {
        format!("work pool '{}'", self.request.name)
    }

    /// The template the pool is written with: `base` with each job variable's default set.
    fn template(&self, base: &Value, values: &Map<String, Value>) -> Result<Value> {
        let mut template = base.clone();
        let properties = template
            .pointer_mut("/variables/properties")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| Error::remote(self.what(), "its base job template has no variables"))?;
        for (name, value) in values {
            if self.optional.contains(name) && !properties.contains_key(name) {
                continue;
            }
            let property = properties.get_mut(name).and_then(Value::as_object_mut).ok_or_else(|| {
                Error::remote(self.what(), format!("its base job template has no job variable '{name}'"))
                    .fix("restore the type's default template with `pushpool work-pool create ... --overwrite`")
            })?;
            property.insert("default".into(), value.clone());
        }
        Ok(template)
    }

    /// The pool's template with the job variable defaults pushpool fills put back to the
    /// worker type's defaults, for a pool kept by a teardown: its defaults must not name
    /// resources that are gone.
    async fn reset_template(&self, current: &Value) -> Result<Value> {
        let defaults = self.type_default().await?;
        let mut template = current.clone();
        let Some(properties) = template.pointer_mut("/variables/properties").and_then(Value::as_object_mut) else {
            return Ok(template);
        };
        for name in self.job_variables.as_object().into_iter().flatten().map(|(name, _)| name) {
            let Some(property) = properties.get_mut(name).and_then(Value::as_object_mut) else { continue };
            match defaults.pointer(&format!("/variables/properties/{name}/default")) {
                Some(default) => property.insert("default".into(), default.clone()),
                None => property.remove("default"),
            };
        }
        Ok(template)
    }

    /// The type's default template.
    async fn type_default(&self) -> Result<Value> {
        self.prefect.default_template(&self.request.pool_type, &self.template_type).await
    }

    /// The template a new (or overwritten) pool starts from: `--base-job-template`'s, else the
    /// type's default.
    async fn starting_template(&self) -> Result<Value> {
        match &self.request.base_job_template {
            Some(template) => Ok(template.clone()),
            None => self.type_default().await,
        }
    }

    /// The base template to fill: the pool's own when it has one and is kept, else the
    /// starting template.
    async fn base(&self, existing: Option<&Value>) -> Result<Value> {
        let own = existing.filter(|t| t.pointer("/variables/properties").is_some());
        match (&self.request.mode, own) {
            (PoolMode::Create { overwrite: true }, _) | (_, None) => self.starting_template().await,
            (_, Some(own)) => Ok(own.clone()),
        }
    }
}

impl Node for WorkPoolNode {
    fn label(&self) -> &'static str {
        "work pool"
    }

    fn observe<'a>(&'a self, upstream: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            // A missing pool is created from the type's default template: it is read now, while
            // the other nodes are observed, so that apply does not wait for it.
            let existing = async {
                let existing = self.prefect.work_pool(&self.request.name).await?;
                if existing.is_none() && self.request.mode != PoolMode::ProvisionInfra {
                    self.starting_template().await?;
                }
                Ok::<_, Error>(existing)
            };
            let (existing, known) = futures::join!(existing, upstream.attrs_for(&self.job_variables));
            let (existing, known) = (existing?, known?);
            let resolved = resolve(&self.job_variables, &known, Secrets::Refuse)?;
            let shown = shown_values(&self.job_variables, &known)?;
            let attrs = Attrs::new().with("name", self.request.name.as_str()).with("job_variables", shown);
            let Some(pool) = existing else {
                return match self.request.mode {
                    PoolMode::Create { .. } | PoolMode::Ensure => Ok(Observation::create("missing", attrs)),
                    PoolMode::ProvisionInfra | PoolMode::Deprovision => Err(Error::usage(self.what(), "does not exist")
                        .fix(format!("create it with `pushpool work-pool create {} --type {} --provision-infra`", self.request.name, self.request.pool_type))),
                };
            };
            if pool.pool_type != self.request.pool_type {
                return Err(Error::usage(self.what(), format!("has type '{}', not '{}'", pool.pool_type, self.request.pool_type))
                    .fix("choose another pool name, or pass the pool's own type"));
            }
            let differs = match &resolved {
                Resolved::Unknown(pending) => Some(format!("job variables take new values: {}", pending.join(", "))),
                Resolved::Known(values) => {
                    let base = self.base(Some(&pool.base_job_template)).await?;
                    let wanted = self.template(&base, values.as_object().unwrap_or(&Map::new()))?;
                    (wanted != pool.base_job_template).then(|| changed_defaults(&wanted, &pool.base_job_template))
                }
            };
            match (differs, &self.request.mode) {
                (None, _) => Ok(Observation::reuse("exists with the wanted job variables", attrs)),
                (Some(reason), PoolMode::Create { overwrite: false }) => Err(Error::usage(self.what(), format!("already exists and would change ({reason})"))
                    .fix(format!("add --overwrite to update it, or run `pushpool work-pool provision-infra {}`", self.request.name))),
                (Some(reason), _) => Ok(Observation::update(reason, attrs)),
            }
        }
        .boxed()
    }

    fn apply<'a>(&'a self, observed: &'a Observation, inputs: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let Resolved::Known(values) = resolve(&self.job_variables, inputs.all(), Secrets::Refuse)? else {
                return Err(Error::remote(self.what(), "job variables are still unknown after their resources were applied"));
            };
            let values = values.as_object().cloned().unwrap_or_default();
            let existing = self.prefect.work_pool(&self.request.name).await?;
            let base = self.base(existing.as_ref().map(|p| &p.base_job_template)).await?;
            let template = self.template(&base, &values)?;
            let client = &self.prefect.client;
            match observed.action {
                Action::Create => client.create_work_pool(&self.request.name, &self.request.pool_type, &template, self.request.paused).await?,
                _ => client.update_work_pool(&self.request.name, &template).await?,
            }
            Ok(Attrs::new().with("job_variables", Value::Object(values)))
        }
        .boxed()
    }

    fn observe_teardown<'a>(&'a self, _: &'a Upstream, teardown: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let Some(pool) = self.prefect.work_pool(&self.request.name).await? else { return Ok(Observation::gone("does not exist")) };
            let attrs = Attrs::new().with("name", self.request.name.as_str());
            if !teardown.keep_pool {
                return Ok(Observation::delete("the pool itself (--keep-pool keeps it)", attrs));
            }
            Ok(if self.reset_template(&pool.base_job_template).await? == pool.base_job_template {
                Observation::keep("kept (--keep-pool); no job variable default names a resource", attrs)
            } else {
                let names: Vec<&str> = self.job_variables.as_object().into_iter().flatten().map(|(name, _)| name.as_str()).collect();
                Observation::update(format!("kept (--keep-pool); reset the defaults of {}", names.join(", ")), attrs)
            })
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, observed: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move {
            let client = &self.prefect.client;
            if observed.action == Action::Delete {
                return client.delete_work_pool(&self.request.name).await;
            }
            let Some(pool) = client.work_pool(&self.request.name).await? else { return Ok(()) };
            client.update_work_pool(&self.request.name, &self.reset_template(&pool.base_job_template).await?).await
        }
        .boxed()
    }
}

/// Each job variable's value as shown in a plan: the value, or "(known after apply)".
fn shown_values(job_variables: &Value, known: &BTreeMap<String, Attrs>) -> Result<Value> {
    let mut shown = Map::new();
    for (name, template) in job_variables.as_object().into_iter().flatten() {
        let value = match resolve(template, known, Secrets::Refuse)? {
            Resolved::Known(value) => value,
            Resolved::Unknown(_) => Value::from(KNOWN_AFTER_APPLY),
        };
        shown.insert(name.clone(), value);
    }
    Ok(Value::Object(shown))
}

/// Each job variable of a base job template with its default (null when it has none), as an
/// object: what a pool's job variables resolve to unless a deployment overrides them.
pub fn job_variable_defaults(template: &Value) -> Value {
    let properties = template.pointer("/variables/properties").and_then(Value::as_object).into_iter().flatten();
    Value::Object(properties.map(|(k, v)| (k.clone(), v.get("default").cloned().unwrap_or(Value::Null))).collect())
}

/// Names the job variables whose defaults differ between two templates.
fn changed_defaults(wanted: &Value, existing: &Value) -> String {
    let (wanted, existing) = (job_variable_defaults(wanted), job_variable_defaults(existing));
    let wanted = wanted.as_object().into_iter().flatten();
    let changed: Vec<&str> = wanted.filter(|(k, v)| existing.get(k.as_str()) != Some(v)).map(|(k, _)| k.as_str()).collect();
    if changed.is_empty() { "base job template differs".into() } else { format!("job variable defaults differ: {}", changed.join(", ")) }
}
