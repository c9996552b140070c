//! The type (and add-ons) a pool was provisioned as, kept in a Prefect variable that outlives
//! the pool and its block.
//!
//! A teardown finds what to delete from the pool's type, and reads the type from the pool. A
//! provisioning killed before the pool was created, or a teardown killed after the pool and its
//! block went, leaves cloud resources and no pool: the record still says the type, so that
//! `pushpool work-pool deprovision NAME` cleans up without `--type`. The pool itself does not
//! say its add-ons (`--image-registry ecr`): the record does, for every later run. It is
//! written before a provisioning apply writes anything (only when missing or different: a
//! re-run writes nothing) and deleted once a teardown has finished.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::client::PrefectClient;
use super::record::Records;
use crate::error::Result;

const RECORDS: Records = Records::new("pushpool_pool");

/// What was recorded of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolRecord {
    /// The pool's type.
    pub pool_type: String,
    /// Its add-ons ("image-registry=ecr").
    pub addons: Vec<String>,
    /// The add-ons' settings ("worker-image").
    pub options: BTreeMap<String, String>,
}

/// What was recorded of `pool`, if anything.
pub async fn read(client: &PrefectClient, pool: &str) -> Result<Option<PoolRecord>> {
    let value = RECORDS.read(client, pool).await?;
    Ok(value.and_then(|v| {
        let addons = v["addons"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect();
        let options = serde_json::from_value(v["options"].clone()).unwrap_or_default();
        Some(PoolRecord { pool_type: v["type"].as_str()?.to_owned(), addons, options })
    }))
}

/// Records that `pool` is of `pool_type` with `addons` and their `options`, unless it already
/// says so.
pub async fn ensure(client: &PrefectClient, pool: &str, pool_type: &str, addons: &[String], options: &BTreeMap<String, String>) -> Result<()> {
    let mut wanted = json!({"pool": pool, "type": pool_type});
    if !addons.is_empty() {
        wanted["addons"] = json!(addons);
    }
    if !options.is_empty() {
        wanted["options"] = json!(options);
    }
    RECORDS.ensure(client, pool, &wanted).await
}

/// Deletes `pool`'s record (a missing one is fine).
pub async fn forget(client: &PrefectClient, pool: &str) -> Result<()> {
    RECORDS.forget(client, pool).await
}
