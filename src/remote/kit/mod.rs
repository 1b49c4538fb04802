//! What providers are built from (rclone's `lib/*`): the pieces every HTTP provider would
//! otherwise write again.

pub mod bucket;
pub mod chunked;
pub mod classify;
pub mod dirs;
pub mod encoder;
pub mod http;
pub mod mime;
pub mod paginate;
pub mod partial;
pub mod time;
pub(crate) mod transport;
pub mod xml;
