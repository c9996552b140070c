//! `gcp.service_account`: the identity flow runs act as, in the run's project (the reference
//! once made it in gcloud's default project instead).
//!
//! Service accounts take no labels, so pushpool records its marks in the description, as
//! `key=value` words: `managed-by=pushpool prefect-work-pool=<pool>`, and while a key is being
//! minted `pending-key-since=<unix seconds>` (see [`crate::minted`]).

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::context::{GcpContext, MARKING, label_value};
use crate::engine::ownership::{decide, owned};
use crate::engine::{Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::{Error, Result};
use crate::minted::{Mark, PENDING, with_pending_word};

/// The description word of a key about to be minted.
const PENDING_KEY: &str = "pending-key-since";

/// A service account of the project.
pub struct ServiceAccount {
    /// The project.
    pub gcp: Arc<GcpContext>,
    /// The account id (the email's local part).
    pub name: String,
    /// The display name given on creation.
    pub display_name: String,
}

/// The `key=value` words of a description.
pub fn marks_of(description: &str) -> Vec<(&str, &str)> {
    description.split_whitespace().filter_map(|word| word.split_once('=')).collect()
}

/// The description of an account pushpool creates for `pool`, with a pending key's mark.
fn description(pool: &str, pending: Option<&Mark>) -> String {
    let marks: Vec<String> = MARKING.marks(pool).iter().map(|(k, v)| format!("{k}={}", label_value(v))).collect();
    let mut text = format!("Runs Prefect flows; created by pushpool. {}", marks.join(" "));
    if let Some(mark) = pending {
        text.push_str(&format!(" {PENDING_KEY}={mark}"));
    }
    text
}

/// The pending key's mark recorded in `description`.
fn pending_in(description: &str) -> Option<Mark> {
    marks_of(description).into_iter().find(|(k, _)| *k == PENDING_KEY).and_then(|(_, v)| Mark::parse(v))
}

/// `account`'s email in the project.
pub fn email(gcp: &GcpContext, account: &str) -> String {
    format!("{account}@{}.iam.gserviceaccount.com", gcp.project())
}

/// The REST path of `account`.
pub fn path(gcp: &GcpContext, account: &str) -> String {
    format!("v1/projects/{}/serviceAccounts/{}", gcp.project(), email(gcp, account))
}

/// The account, if it exists.
pub async fn read(gcp: &GcpContext, account: &str) -> Result<Option<Value>> {
    gcp.iam.get(&path(gcp, account), &format!("service account {}", email(gcp, account))).await
}

/// Records (`Some`) or clears (`None`) a pending key in the account's description, keeping
/// the rest of the description as it is.
pub async fn set_pending(gcp: &GcpContext, account: &str, pending: Option<&Mark>) -> Result<()> {
    let what = format!("service account {}", email(gcp, account));
    let Some(found) = read(gcp, account).await? else { return Ok(()) };
    let current = found["description"].as_str().unwrap_or_default();
    let words: Vec<String> = current.split_whitespace().map(str::to_owned).collect();
    let wanted = with_pending_word(&words, PENDING_KEY, pending).join(" ");
    if wanted == current {
        return Ok(());
    }
    let body = json!({"serviceAccount": {"description": wanted, "etag": found["etag"]}, "updateMask": "description"});
    gcp.iam.send(Method::PATCH, &path(gcp, account), Some(body), &what).await.map(drop)
}

impl ServiceAccount {
    fn what(&self) -> String {
        format!("service account {}", email(&self.gcp, &self.name))
    }

    fn attrs(&self, found: Option<&Value>) -> Attrs {
        let mut attrs = Attrs::new().with("name", self.name.as_str()).with("email", email(&self.gcp, &self.name));
        if let Some(found) = found {
            attrs.set("unique_id", found["uniqueId"].as_str().unwrap_or_default());
            if let Some(mark) = found["description"].as_str().and_then(pending_in) {
                attrs = attrs.hint(PENDING, mark.to_string());
            }
        }
        attrs
    }
}

impl Node for ServiceAccount {
    fn label(&self) -> &'static str {
        "service account"
    }

    fn observe<'a>(&'a self, _: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            Ok(match read(&self.gcp, &self.name).await? {
                Some(found) if found["disabled"] == true => {
                    return Err(Error::usage(self.what(), "exists but is disabled, so flow runs could not use it").fix(format!(
                        "enable it (`gcloud iam service-accounts enable {}`), or pick another with --set service_account=<name>",
                        email(&self.gcp, &self.name)
                    )));
                }
                Some(found) => Observation::reuse("exists", self.attrs(Some(&found))),
                None => Observation::create(format!("missing in project {}", self.gcp.project()), self.attrs(None)),
            })
        }
        .boxed()
    }

    /// Created with the pending-key mark already in its description: the key minted next
    /// needs no call of its own to set it.
    fn apply<'a>(&'a self, _: &'a Observation, _: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let mark = Mark::at(crate::clock::unix_seconds());
            let body = json!({
                "accountId": self.name,
                "serviceAccount": {"displayName": self.display_name, "description": description(&self.gcp.pool, Some(&mark))},
            });
            let path = format!("v1/projects/{}/serviceAccounts", self.gcp.project());
            let answer = self.gcp.iam.call(Method::POST, &path, Some(body)).await?;
            let found = match answer.status {
                status if status.is_success() => answer.body,
                // Made meanwhile (or by a create whose answer was lost): adopt it as it is.
                StatusCode::CONFLICT => read(&self.gcp, &self.name).await?.ok_or_else(|| Error::remote(self.what(), "exists (409) but cannot be read"))?,
                _ => return Err(self.gcp.iam.refused(&Method::POST, &path, &answer, &self.what())),
            };
            Ok(self.attrs(Some(&found)))
        }
        .boxed()
    }

    fn observe_teardown<'a>(&'a self, _: &'a Upstream, teardown: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let Some(found) = read(&self.gcp, &self.name).await? else { return Ok(Observation::gone("does not exist")) };
            let attrs = self.attrs(Some(&found));
            let email = email(&self.gcp, &self.name);
            let unique_id = found["uniqueId"].as_str().unwrap_or_default();
            let owned = owned(marks_of(found["description"].as_str().unwrap_or_default()));
            Ok(decide(owned, teardown.in_use([email.as_str(), unique_id]), attrs, "created by pushpool, used by no other pool"))
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, _: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move { self.gcp.iam.delete(&path(&self.gcp, &self.name), &self.what()).await.map(drop) }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_records_the_marks_and_a_pending_key() {
        let mark = Mark { since: 1_700_000_000, replaces: Some("0f1e2d".into()) };
        let text = description("my pool", Some(&mark));
        assert!(owned(marks_of(&text)), "{text}");
        assert!(marks_of(&text).contains(&("prefect-work-pool", "my_pool")));
        assert_eq!(pending_in(&text), Some(mark));
        assert_eq!(pending_in(&description("p", None)), None);
        assert!(!owned(marks_of("made by hand, see managed-by=terraform")));
    }
}
