//! One integration binary: every test talks to a real server on its own
//! port with its own SQLite file, or runs the real `hostwatch` binary.

// A test that meets the unexpected should stop there, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod apache;
mod audit_trail;
mod auth;
mod bad_database;
mod checks;
mod cli;
mod clock_steps;
mod command_output;
mod control_guards;
mod dashboard;
mod deb;
mod directories;
mod errors;
mod files;
mod fleet;
mod floods;
mod generate;
mod helpers;
mod host_check;
mod idle;
mod lifecycle;
mod limits;
mod load;
mod metrics;
mod mount_faults;
mod notifiers;
mod openapi;
mod packaging;
mod privileges;
mod process_bounds;
mod processes;
mod remote_write;
mod request_log;
mod rollups;
mod sampler;
mod schema_fixtures;
mod schemathesis;
mod service_faults;
mod services;
mod slow_readers;
mod spawn_race;
mod storage_faults;
mod tls;
mod ui_assets;
mod watchdog;
mod watchdog_agent;
mod watchdog_api;
mod watchdog_mail;
mod watchdog_restart;
mod watchdog_state;
