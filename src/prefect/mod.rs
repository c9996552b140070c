//! Prefect: the REST client, settings and profile discovery, the profile writer, and the
//! node kinds of the Prefect side of a pool (block, work pool, build namespace).

pub mod batch;
pub mod client;
pub mod context;
pub mod lock;
pub mod nodes;
pub mod pool_record;
pub mod profile;
pub mod record;
pub mod settings;
