//! Coiled, for `coiled:push` pools: nothing is built in Coiled; the pool's credentials block
//! holds the token that `coiled login` saved in the user's dask config.

pub mod dask_config;
pub mod token;
