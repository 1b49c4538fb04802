//! A synchronous SSH client (docs/design-sftp-ftp.md §0): the transport and user
//! authentication the SFTP provider stands on, on ring's primitives, with no async
//! runtime (the product card keeps the core synchronous).
//!
//! Built so far: the transport (`curve25519-sha256`, `chacha20-poly1305@openssh.com`,
//! strict key exchange, re-keying, host-key check) and user authentication (password,
//! keyboard-interactive with the password, Ed25519 and RSA keys) and session channels
//! (`exec`, `subsystem`, windows). Not yet: ECDSA user keys, `aes256-gcm@openssh.com`, the
//! SFTP codec and provider.

pub mod auth;
pub mod channel;
pub mod hostkey;
pub mod sftp;
pub mod transport;
pub mod wire;
