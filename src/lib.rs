//! hostwatch: one small always-on agent that watches a Linux host.

pub mod collect;
pub mod config;
pub mod domain;
pub mod store;
