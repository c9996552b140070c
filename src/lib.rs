//! pushpool: gets a Prefect push work pool ready to run flows.
//!
//! A pool type's resources are a [`blueprint`] (data in `plans/`); the [`engine`] observes
//! them all at once, diffs them into a plan of create / update / reuse changes (or, for a
//! teardown, delete / keep), and applies the plan concurrently. [`clouds`] holds each cloud's node kinds, [`prefect`] the Prefect
//! side, [`provision`] the whole run, [`ui`] the console and [`cli`] the command line.

pub mod blueprint;
pub mod cli;
pub mod clock;
pub mod clouds;
pub mod docker;
pub mod document;
pub mod engine;
pub mod error;
pub mod header;
pub mod http;
pub mod minted;
pub mod names;
pub mod parallelism;
pub mod policies;
pub mod prefect;
pub mod program;
pub mod provision;
pub mod redact;
pub mod request;
pub mod retry;
pub mod secret;
pub mod ui;
