//! The cloud-agnostic plan/apply engine.
//!
//! A [`Graph`] of nodes, each implemented by a [`Node`] kind of some cloud. [`plan`] observes
//! every node at once and decides `create`, `update` or `reuse` with a reason; [`apply`] walks
//! the graph, starting each node as soon as its dependencies are done. [`plan_teardown`]
//! decides `delete`, `keep` or `gone` instead, and apply then walks the graph backwards. No
//! state is kept locally: the clouds are the state, and ownership tags say what is pushpool's.

mod apply;
mod attrs;
mod graph;
pub mod memo;
mod node;
mod observation;
pub mod ownership;
mod plan;
pub mod reference;
mod teardown;
mod upstream;

pub use apply::{Applied, Progress, apply, waiting};
pub use attrs::{Attr, Attrs};
pub use graph::{Entry, Graph, NodeInfo};
pub use node::{Node, NodeRef};
pub use observation::{Action, Observation};
pub use plan::{Change, Goal, Plan, plan, plan_teardown};
pub use teardown::{Teardown, summarise};
pub use upstream::{Inputs, Upstream};

#[cfg(test)]
mod tests;
