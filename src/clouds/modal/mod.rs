//! Modal, for `modal:push` pools: nothing is built in Modal; the pool's credentials block holds
//! the token the user's own Modal client uses.

pub mod token;
