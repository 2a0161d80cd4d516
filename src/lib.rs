//! hostwatch: one small always-on agent that watches a Linux host.

pub mod api;
pub mod cli;
pub mod clock;
pub mod collect;
pub mod config;
pub mod control;
pub mod directories;
pub mod domain;
pub mod generate;
pub mod memory;
pub mod remote_write;
pub mod sampler;
pub mod services;
pub mod startup;
pub mod store;
pub mod tail;
pub mod telemetry;
pub mod ticker;
pub mod tls;
pub mod tokens;
pub mod watchdog;
