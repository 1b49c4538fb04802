//! Persistent state: credentials, tasks, jobs (SQLite), and secrets at rest.
//!
//! The store is being built for the tasks-and-jobs issue; this module currently holds the
//! secrets layer that it rests on.

pub mod db;
pub mod secrets;

pub use db::{Credential, KeychainEntry, Pins, Store, Task};
