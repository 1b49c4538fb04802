//! What providers are built from (rclone's `lib/*`): the pieces every HTTP provider would
//! otherwise write again.

pub mod paginate;
