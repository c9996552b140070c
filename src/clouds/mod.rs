//! The clouds pushpool provisions in: each one's client setup and node kinds.

pub mod aws;
pub mod coiled;
pub mod modal;
