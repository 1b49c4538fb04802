//! Server host keys: parsing the SSH blobs, verifying the exchange-hash signature with
//! ring, and the forms admins compare (`SHA256:` fingerprints as `ssh-keygen -l` prints
//! them, `TYPE BASE64` lines as `known_hosts` and rclone's `host_keys` hold them).

use super::wire::{Reader, protocol};
use crate::error::{Error, Kind, Result};
use base64::Engine as _;
use ring::signature::{self, UnparsedPublicKey};

/// Host key algorithms, in our order of preference.
pub const ALGORITHMS: &[&str] =
    &["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "rsa-sha2-512", "rsa-sha2-256"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostKey {
    /// The key's type (`ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`).
    pub kind: String,
    pub blob: Vec<u8>,
}

impl HostKey {
    pub fn parse(blob: &[u8]) -> Result<HostKey> {
        let kind = String::from_utf8_lossy(Reader(blob).string()?).into_owned();
        Ok(HostKey { kind, blob: blob.to_vec() })
    }

    /// `TYPE BASE64`.
    pub fn line(&self) -> String {
        format!("{} {}", self.kind, base64::engine::general_purpose::STANDARD.encode(&self.blob))
    }

    /// `SHA256:…` as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        let d = ring::digest::digest(&ring::digest::SHA256, &self.blob);
        format!("SHA256:{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(d.as_ref()))
    }

    /// Check the server's signature `sig` of the exchange hash `h` under algorithm `alg`.
    pub fn verify(&self, alg: &str, h: &[u8], sig: &[u8]) -> Result<()> {
        let mut sr = Reader(sig);
        let sig_alg = String::from_utf8_lossy(sr.string()?).into_owned();
        let sig = sr.string()?;
        if sig_alg != alg {
            return Err(protocol(format!("the host key signed with {sig_alg}, not the agreed {alg}")));
        }
        let mut kr = Reader(&self.blob);
        kr.string()?;
        let ok = match alg {
            "ssh-ed25519" => {
                let public = kr.string()?;
                UnparsedPublicKey::new(&signature::ED25519, public).verify(h, sig).is_ok()
            }
            "rsa-sha2-256" | "rsa-sha2-512" => {
                let e = kr.mpint()?;
                let n = kr.mpint()?;
                let params = if alg == "rsa-sha2-512" {
                    &signature::RSA_PKCS1_2048_8192_SHA512
                } else {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                };
                signature::RsaPublicKeyComponents { n, e }.verify(params, h, sig).is_ok()
            }
            "ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384" => {
                let (algo, width): (&signature::EcdsaVerificationAlgorithm, usize) = if alg.ends_with("256") {
                    (&signature::ECDSA_P256_SHA256_FIXED, 32)
                } else {
                    (&signature::ECDSA_P384_SHA384_FIXED, 48)
                };
                kr.string()?;
                let q = kr.string()?;
                let mut rs = Reader(sig);
                let (r, s) = (rs.mpint()?, rs.mpint()?);
                if r.len() > width || s.len() > width {
                    return Err(protocol("an ECDSA signature of the wrong size"));
                }
                let mut fixed = vec![0u8; 2 * width];
                fixed[width - r.len()..width].copy_from_slice(r);
                fixed[2 * width - s.len()..].copy_from_slice(s);
                UnparsedPublicKey::new(algo, q).verify(h, &fixed).is_ok()
            }
            other => return Err(Error::new(Kind::Unsupported, format!("host key algorithm {other}"))),
        };
        if !ok {
            return Err(Error::new(Kind::Permission, "SSH: the server's host key signature does not verify"));
        }
        Ok(())
    }
}
