//! Azure Storage's SharedKey authorisation: an HMAC-SHA256, keyed with the account key,
//! over a canonical form of the request (learn.microsoft.com, "Authorize with Shared Key").

use crate::error::{Error, Result};
use base64::Engine as _;
use hmac::{KeyInit, Mac};

/// The storage service version every request asks for.
pub const VERSION: &str = "2021-08-06";

pub struct SharedKey {
    account: String,
    key: Vec<u8>,
}

impl SharedKey {
    pub fn new(account: &str, key_b64: &str) -> Result<SharedKey> {
        let key = base64::engine::general_purpose::STANDARD.decode(key_b64.trim()).map_err(|_| {
            Error::usage("the Azure account key is not valid: it must be the base64 key the portal shows")
        })?;
        if key.is_empty() {
            return Err(Error::usage("the Azure account key is empty"));
        }
        Ok(SharedKey { account: account.to_string(), key })
    }

    /// Add `x-ms-date`, `x-ms-version` and `Authorization` to `headers` for a request of
    /// `method` on `path` (percent-encoded, as sent) with `query` (decoded values).
    pub fn sign(&self, method: &str, path: &str, query: &[(&str, String)], headers: &mut Vec<(String, String)>) {
        let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        headers.push(("x-ms-date".into(), date));
        headers.push(("x-ms-version".into(), VERSION.into()));
        let get = |name: &str| {
            headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).unwrap_or("")
        };
        let length = match get("content-length") {
            "0" => "",
            l => l,
        };
        let mut s = format!(
            "{method}\n{}\n{}\n{length}\n{}\n{}\n\n{}\n{}\n{}\n{}\n{}\n",
            get("content-encoding"),
            get("content-language"),
            get("content-md5"),
            get("content-type"),
            get("if-modified-since"),
            get("if-match"),
            get("if-none-match"),
            get("if-unmodified-since"),
            get("range"),
        );
        let mut ms: Vec<(String, &str)> = headers
            .iter()
            .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-ms-"))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim()))
            .collect();
        ms.sort();
        for (k, v) in ms {
            s.push_str(&format!("{k}:{v}\n"));
        }
        s.push_str(&format!("/{}{}", self.account, path));
        let mut q: Vec<(String, &str)> = query.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.as_str())).collect();
        q.sort();
        let mut i = 0;
        while i < q.len() {
            let name = q[i].0.clone();
            let mut values = Vec::new();
            while i < q.len() && q[i].0 == name {
                values.push(q[i].1);
                i += 1;
            }
            s.push_str(&format!("\n{name}:{}", values.join(",")));
        }
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(s.as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        headers.push(("authorization".into(), format!("SharedKey {}:{sig}", self.account)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_keys_are_usage_errors_without_the_key() {
        let e = SharedKey::new("acct", "not base64!").err().unwrap();
        assert_eq!(e.kind(), crate::error::Kind::Usage);
        assert!(!e.message().contains("not base64!"));
    }

    #[test]
    fn signature_covers_the_canonical_request() {
        let k = SharedKey::new("acct", "a2V5").unwrap();
        let mut h = vec![("content-length".to_string(), "0".to_string())];
        k.sign("GET", "/c", &[("restype", "container".into()), ("comp", "list".into())], &mut h);
        let auth = &h.iter().find(|(k, _)| k == "authorization").unwrap().1;
        assert!(auth.starts_with("SharedKey acct:") && auth.len() > 40, "{auth}");
    }
}
