//! cloudsync: Cloud Sync tasks for NAS appliances.
//!
//! A low-footprint, synchronous transfer engine with rclone-compatible decisions
//! ([`engine`]), a small [`remote::Remote`] trait with one implementation per provider
//! ([`remote`]), and a C ABI over all of it (`ffi`, header `include/cloudsync.h`).
//!
//! Data flows one way: CLI / C API / daemon → engine → `Remote` → providers.

pub mod clock;
pub mod crypt;
pub mod engine;
pub mod error;
pub mod ffi;
pub mod index;
pub mod keychain;
pub mod path;
pub mod process;
pub mod remote;
pub mod ssh;
pub mod store;
pub mod task;
pub mod zfs;

pub use error::{Error, Kind, Result};

/// The library version (the crate version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
