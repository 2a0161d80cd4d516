//! One integration binary: every test talks to a real server on its own
//! port with its own SQLite file, or runs the real `hostwatch` binary.

// A test that meets the unexpected should stop there, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod apache;
mod auth;
mod checks;
mod directories;
mod errors;
mod helpers;
mod lifecycle;
mod load;
mod openapi;
mod packaging;
mod processes;
mod request_log;
mod sampler;
mod service_faults;
mod services;
