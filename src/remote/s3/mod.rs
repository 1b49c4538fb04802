//! S3 (placeholder while being written).
