//! The reads of a run of several pools that go by pool, done once for all of them: one filter
//! call for the work pools, one for their records and one per block type for their blocks,
//! instead of a `GET` of each per pool.
//!
//! A pools file of a hundred pools otherwise sends two hundred reads to Prefect before any
//! cloud is read. The batch is read on first demand, by whichever pool asks first; the others
//! wait for the same answer, so that the pools' other reads (a cloud connection made while
//! Prefect is read) still run beside it. A run of one pool keeps its single reads.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use tokio::sync::OnceCell;

use super::client::{BlockDocument, PrefectClient, WorkPool};
use crate::error::Result;

/// The fewest pools read in a batch. A filter read ends at its first empty page, so a batch
/// is two calls per kind, one after the other: for two pools, the four single reads sent at
/// once are as many calls and one round trip less.
pub const SMALLEST: usize = 3;

/// The pools whose reads are batched, and what the batch read. The default batches nothing.
#[derive(Default)]
pub struct Batch {
    pools: BTreeSet<String>,
    records: BTreeSet<String>,
    blocks: BTreeMap<String, BTreeSet<String>>,
    read: OnceCell<Result<Batched>>,
}

/// What one batch read found: pools by name, variables by name, blocks by type and name.
#[derive(Clone)]
struct Batched {
    pools: BTreeMap<String, WorkPool>,
    variables: BTreeMap<String, Value>,
    blocks: BTreeMap<(String, String), BlockDocument>,
}

impl Batch {
    /// A batch of the work pools `pools`, the variables `records` (their records' names) and
    /// the block documents `blocks` (names by block type slug); one of nothing for fewer than
    /// [`SMALLEST`] pools, whose single reads cost no more calls.
    pub fn of(pools: BTreeSet<String>, records: BTreeSet<String>, blocks: BTreeMap<String, BTreeSet<String>>) -> Self {
        match pools.len() >= SMALLEST {
            true => Self { pools, records, blocks, read: OnceCell::new() },
            false => Self::default(),
        }
    }

    /// Block document `slug`/`name` (secret fields obfuscated) as the batch found it; None
    /// when it is no block of the batch.
    pub async fn block_document(&self, client: &PrefectClient, slug: &str, name: &str) -> Option<Result<Option<BlockDocument>>> {
        if !self.blocks.get(slug).is_some_and(|names| names.contains(name)) {
            return None;
        }
        Some(self.read(client).await.map(|b| b.blocks.get(&(slug.to_owned(), name.to_owned())).cloned()))
    }

    /// Work pool `name` as the batch found it; None when it is no pool of the batch.
    pub async fn work_pool(&self, client: &PrefectClient, name: &str) -> Option<Result<Option<WorkPool>>> {
        if !self.pools.contains(name) {
            return None;
        }
        Some(self.read(client).await.map(|b| b.pools.get(name).cloned()))
    }

    /// Variable `name` as the batch found it; None when it is no variable of the batch.
    pub async fn variable(&self, client: &PrefectClient, name: &str) -> Option<Result<Option<Value>>> {
        if !self.records.contains(name) {
            return None;
        }
        Some(self.read(client).await.map(|b| b.variables.get(name).cloned()))
    }

    async fn read(&self, client: &PrefectClient) -> Result<Batched> {
        self.read
            .get_or_init(|| async {
                let pools: Vec<String> = self.pools.iter().cloned().collect();
                let records: Vec<String> = self.records.iter().cloned().collect();
                let blocks = self.blocks.iter().map(|(slug, names)| async move {
                    let names: Vec<String> = names.iter().cloned().collect();
                    let found = client.block_documents_named(slug, &names).await?;
                    Ok::<_, crate::error::Error>(found.into_iter().map(|b| ((slug.clone(), b.name.clone()), b)).collect::<Vec<_>>())
                });
                let (pools, variables, blocks) = futures::join!(client.work_pools_named(&pools), client.variables_named(&records), futures::future::try_join_all(blocks));
                Ok(Batched {
                    pools: pools?.into_iter().map(|p| (p.name.clone(), p)).collect(),
                    variables: variables?.into_iter().map(|v| (v.name, v.value)).collect(),
                    blocks: blocks?.into_iter().flatten().collect(),
                })
            })
            .await
            .clone()
    }
}
