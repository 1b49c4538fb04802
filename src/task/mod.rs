//! Cloud Sync tasks: the provider registry and validation, the job runner's parts (run
//! queue and path locks across processes, job logs, scripts) and the TrueNAS import.
//! Being built for the tasks-and-jobs issue: the task model on top of these, the job
//! runner that ties them to the engine, and restore are still to come.

pub mod api;
pub mod joblog;
pub mod model;
pub mod providers;
pub mod queue;
pub mod runner;
pub mod script;
pub mod truenas_import;
