//! The Prefect side of a run: the client, the settings, and reads shared between nodes.

use serde_json::Value;

use super::batch::Batch;
use super::client::{BlockDocument, PrefectClient, WorkPool};
use super::settings::PrefectSettings;
use crate::engine::memo::Memo;
use crate::error::Result;

/// The Prefect API of a run, with its reads done once.
pub struct PrefectContext {
    /// The REST client.
    pub client: PrefectClient,
    /// Where the API and the profile are.
    pub settings: PrefectSettings,
    blocks: Memo<(String, String), Result<Option<BlockDocument>>>,
    pools: Memo<String, Result<Option<WorkPool>>>,
    templates: Memo<(String, String), Result<Value>>,
    block_types: Memo<String, Result<(String, String)>>,
    batch: Batch,
}

impl PrefectContext {
    /// A context for `settings`.
    pub fn new(settings: PrefectSettings) -> Result<Self> {
        Ok(Self {
            client: PrefectClient::new(&settings)?,
            settings,
            blocks: Memo::default(),
            pools: Memo::default(),
            templates: Memo::default(),
            block_types: Memo::default(),
            batch: Batch::default(),
        })
    }

    /// This context, reading the pools, records and blocks of `batch` in one call per kind
    /// (see [`super::batch`]).
    pub fn with_batch(self, batch: Batch) -> Self {
        Self { batch, ..self }
    }

    /// The block document, read once per run (the access key and the block both need it).
    pub async fn block_document(&self, slug: &str, name: &str) -> Result<Option<BlockDocument>> {
        let key = (slug.to_owned(), name.to_owned());
        self.blocks
            .get_or_init(&key, || async { or_read(self.batch.block_document(&self.client, slug, name).await, self.client.block_document(slug, name, false)).await })
            .await
    }

    /// The work pool, read once per run (the command and the pool node both need it).
    pub async fn work_pool(&self, name: &str) -> Result<Option<WorkPool>> {
        self.pools.get_or_init(&name.to_owned(), || async { or_read(self.batch.work_pool(&self.client, name).await, self.client.work_pool(name)).await }).await
    }

    /// The id of block type `slug` and of its newest schema, read once per run: every pool's
    /// new block of that type needs them. `fix` says what to do when the type is missing.
    pub async fn block_type_and_schema(&self, slug: &str, fix: &str) -> Result<(String, String)> {
        self.block_types
            .get_or_init(&slug.to_owned(), || async {
                let type_id = self.client.block_type_id(slug, fix).await?;
                let schema = self.client.newest_block_schema(&type_id).await?;
                Ok((type_id, schema.id))
            })
            .await
    }

    /// Variable `name`'s value: from the run's batch when it holds it, else read.
    pub async fn variable(&self, name: &str) -> Result<Option<Value>> {
        or_read(self.batch.variable(&self.client, name).await, self.client.variable(name)).await
    }

    /// The default base job template of `pool_type` (else of its worker type `fallback`),
    /// read once per run.
    pub async fn default_template(&self, pool_type: &str, fallback: &str) -> Result<Value> {
        let key = (pool_type.to_owned(), fallback.to_owned());
        self.templates.get_or_init(&key, || self.client.default_base_job_template(pool_type, fallback)).await
    }
}

/// What the run's batch `found`, else what `read` reads.
async fn or_read<T>(found: Option<Result<T>>, read: impl Future<Output = Result<T>>) -> Result<T> {
    match found {
        Some(found) => found,
        None => read.await,
    }
}
