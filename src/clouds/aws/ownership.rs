//! What marks an AWS resource as pushpool's, and the teardown decision that follows from it.
//!
//! Its own module so that everything that reads tags (the node kinds, the network facts)
//! and the context that writes them depend on it, and it on nothing of theirs.

use crate::engine::{Attrs, Observation};

/// The tag that marks a resource as created by pushpool.
pub const MANAGED_BY: (&str, &str) = ("managed-by", "pushpool");
/// The tag naming the work pool a resource was created for.
pub const POOL_TAG: &str = "prefect.work-pool";

/// Why a teardown keeps a resource that lacks the [`MANAGED_BY`] tag.
pub const NOT_OURS: &str = "not created by pushpool (no managed-by=pushpool tag), so pushpool never deletes it";

/// True when `tags` (key, value) carry the [`MANAGED_BY`] tag: the only resources a teardown
/// deletes.
pub fn owned<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
    tags.into_iter().any(|tag| tag == MANAGED_BY)
}

/// The teardown decision every AWS kind starts from: keep what lacks the [`MANAGED_BY`] tag,
/// keep what something else still names (`in_use`, from
/// [`Teardown::in_use`](crate::engine::Teardown::in_use)), delete the rest, saying `why`.
pub fn decide(owned: bool, in_use: Option<String>, attrs: Attrs, why: impl Into<String>) -> Observation {
    match (owned, in_use) {
        (false, _) => Observation::keep(NOT_OURS, attrs),
        (true, Some(used)) => Observation::keep(used, attrs),
        (true, None) => Observation::delete(why, attrs),
    }
}
