//! Cloud Sync tasks: the task model and its validation, restore, and the job runner
//! (queues, locks, scripts, snapshot, logs). Being built for the tasks-and-jobs issue;
//! the job log and script runner are in place.

pub mod joblog;
pub mod script;
