//! What pushpool provisioned a pool as, kept in a Prefect variable that outlives the pool and
//! its block: its type and add-ons, where it lives, and which cloud resources it uses.
//!
//! A teardown finds what to delete from the pool's type, and reads the type from the pool. A
//! provisioning killed before the pool was created, or a teardown killed after the pool and its
//! block went, leaves cloud resources and no pool: the record still says the type, so that
//! `pushpool work-pool deprovision NAME` cleans up without `--type`. The pool itself does not
//! say its add-ons (`--image-registry ecr`) nor, reliably, where it lives (the shell's AWS
//! region may have changed since): the record does, for every later run. It also lists the
//! resources the pool uses, so that a teardown of another pool, of any type, keeps them. It is
//! written before a provisioning apply writes anything (only when missing or different: a
//! re-run writes nothing) and deleted once a teardown has finished.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::client::PrefectClient;
use super::context::PrefectContext;
use super::record::Records;
use crate::document::TargetDoc;
use crate::error::Result;

const RECORDS: Records = Records::new("pushpool_pool");

/// What was recorded of a pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolRecord {
    /// The pool's type.
    pub pool_type: String,
    /// Its add-ons ("image-registry=ecr").
    pub addons: Vec<String>,
    /// The add-ons' settings ("worker-image").
    pub options: BTreeMap<String, String>,
    /// Where its resources are, one target per cloud it builds in (AWS account and region, GCP
    /// project and region, Azure tenant, subscription and location). Empty in records written
    /// before places were recorded.
    pub places: Vec<TargetDoc>,
    /// The cloud resources it uses, as [`resource keys`](crate::engine::NodeInfo::key).
    pub uses: Vec<String>,
}

impl PoolRecord {
    /// The record as the variable holds it.
    fn to_value(&self, pool: &str) -> Value {
        let mut value = json!({"pool": pool, "type": self.pool_type});
        if !self.addons.is_empty() {
            value["addons"] = json!(self.addons);
        }
        if !self.options.is_empty() {
            value["options"] = json!(self.options);
        }
        if !self.places.is_empty() {
            value["places"] = json!(self.places);
        }
        if !self.uses.is_empty() {
            value["uses"] = json!(self.uses);
        }
        value
    }

    /// The record a variable holds; None when it is not one (no type).
    fn from_value(value: &Value) -> Option<Self> {
        let strings = |field: &str| value[field].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect();
        Some(Self {
            pool_type: value["type"].as_str()?.to_owned(),
            addons: strings("addons"),
            options: serde_json::from_value(value["options"].clone()).unwrap_or_default(),
            // A place this version cannot read is treated as unknown, never guessed.
            places: serde_json::from_value(value["places"].clone()).unwrap_or_default(),
            uses: strings("uses"),
        })
    }
}

/// What was recorded of `pool`, if anything (from the run's batch when it has it).
pub async fn read(prefect: &PrefectContext, pool: &str) -> Result<Option<PoolRecord>> {
    Ok(prefect.variable(&variable_name(pool)).await?.as_ref().and_then(PoolRecord::from_value))
}

/// The name of the variable that holds `pool`'s record, for a batch of several pools' reads.
pub fn variable_name(pool: &str) -> String {
    RECORDS.variable_name(pool)
}

/// Every pool's record, by pool name: what a teardown must not break.
pub async fn read_all(client: &PrefectClient) -> Result<BTreeMap<String, PoolRecord>> {
    let variables = client.variables_tagged(RECORDS.tag()).await?;
    Ok(variables.iter().filter_map(|variable| Some((variable.value["pool"].as_str()?.to_owned(), PoolRecord::from_value(&variable.value)?))).collect())
}

/// Makes `pool`'s record, read as `existing`, say `record`: nothing when it already does.
pub async fn put(client: &PrefectClient, pool: &str, record: &PoolRecord, existing: Option<&PoolRecord>) -> Result<()> {
    RECORDS.put(client, pool, &record.to_value(pool), existing.map(|e| e.to_value(pool)).as_ref()).await
}

/// Deletes `pool`'s record (a missing one is fine).
pub async fn forget(client: &PrefectClient, pool: &str) -> Result<()> {
    RECORDS.forget(client, pool).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_older_records_read_without_places() {
        let record = PoolRecord {
            pool_type: "ecs:push".into(),
            addons: vec![],
            options: BTreeMap::new(),
            places: vec![TargetDoc::Aws { account: "123456789012".into(), region: "eu-west-1".into(), profile: Some("team-a".into()) }],
            uses: vec!["aws.ecs_cluster|123456789012/eu-west-1|prefect-ecs-cluster".into()],
        };
        let value = record.to_value("p");
        assert_eq!(value["places"][0], json!({"cloud": "aws", "account": "123456789012", "region": "eu-west-1", "profile": "team-a"}));
        assert_eq!(PoolRecord::from_value(&value), Some(record));
        let older = PoolRecord::from_value(&json!({"pool": "p", "type": "ecs:push"})).unwrap();
        assert!(older.places.is_empty() && older.uses.is_empty());
        assert_eq!(PoolRecord::from_value(&json!({"pool": "p"})), None);
    }
}
