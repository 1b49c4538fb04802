//! Google service-account authorisation: the key file's private key signs a JWT (RS256)
//! that the key file's `token_uri` exchanges for an access token (Google's "OAuth 2.0 for
//! Server to Server Applications"). Tokens are reused until a minute before they expire,
//! and renewed at once when the storage API refuses one.

use crate::error::{Error, Kind, Result};
use crate::remote::kit::classify::{self, Failure, Retry};
use crate::remote::kit::http::{Body, Classify, HttpClient, Prepared, read_body};
use base64::Engine as _;
use serde::Deserialize;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";
const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The fields of a service-account key file this client uses.
#[derive(Deserialize)]
pub struct ServiceAccount {
    #[serde(default)]
    pub project_id: String,
    #[serde(default)]
    pub private_key_id: String,
    pub private_key: String,
    pub client_email: String,
    #[serde(default = "default_token_uri")]
    pub token_uri: String,
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

impl ServiceAccount {
    /// Parse the key file TrueNAS stores (a JSON text, or already an object).
    pub fn parse(value: &serde_json::Value) -> Result<ServiceAccount> {
        let bad = |why: &str| Error::usage(format!("the service account credentials are not a Google key file: {why}"));
        let sa: ServiceAccount = match value {
            serde_json::Value::String(s) => serde_json::from_str(s).map_err(|e| bad(&e.to_string()))?,
            v => serde_json::from_value(v.clone()).map_err(|e| bad(&e.to_string()))?,
        };
        Ok(sa)
    }
}

pub struct TokenSource {
    key: ring::signature::RsaKeyPair,
    email: String,
    key_id: String,
    pub token_uri: String,
    current: Mutex<Option<(String, Instant)>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource").field("email", &self.email).field("token_uri", &self.token_uri).finish()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: u64,
}

#[derive(Deserialize, Default)]
struct TokenError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

struct TokenClassify;
impl Classify for TokenClassify {
    fn status(&self, status: u16, headers: &ureq::http::HeaderMap, body: &[u8], _what: &str) -> Failure {
        let e: TokenError = serde_json::from_slice(body).unwrap_or_default();
        match (status, e.error.as_str()) {
            (400 | 401, "invalid_grant" | "invalid_client" | "unauthorized_client") => Failure::new(
                Kind::Permission,
                format!(
                    "Google refused the service account key ({}: {}): check that the key is still valid and this system's clock is right",
                    e.error, e.error_description
                ),
                Retry::No,
            ),
            _ => classify::default(status, headers, body, "the token endpoint"),
        }
    }
}

impl TokenSource {
    pub fn new(sa: &ServiceAccount) -> Result<TokenSource> {
        let pem = sa.private_key.trim();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| Error::usage("the service account's private key is not a PEM key"))?;
        let key = ring::signature::RsaKeyPair::from_pkcs8(&der)
            .map_err(|e| Error::usage(format!("the service account's private key cannot be used: {e}")))?;
        Ok(TokenSource {
            key,
            email: sa.client_email.clone(),
            key_id: sa.private_key_id.clone(),
            token_uri: sa.token_uri.clone(),
            current: Mutex::new(None),
        })
    }

    fn assertion(&self) -> Result<String> {
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": self.key_id});
        let claims = serde_json::json!({"iss": self.email, "scope": SCOPE, "aud": self.token_uri,
                                        "iat": now, "exp": now + 3600});
        let input = format!("{}.{}", B64URL.encode(header.to_string()), B64URL.encode(claims.to_string()));
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(&ring::signature::RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), input.as_bytes(), &mut sig)
            .map_err(|_| Error::other("signing the service account assertion failed"))?;
        Ok(format!("{input}.{}", B64URL.encode(sig)))
    }

    /// A valid access token; `refused`: the storage API refused this one, get another.
    pub fn token(&self, http: &HttpClient, refused: Option<&str>) -> Result<String> {
        let mut g = self.current.lock().map_err(|_| Error::other("lock poisoned"))?;
        if let Some((t, until)) = g.as_ref()
            && Some(t.as_str()) != refused
            && Instant::now() + Duration::from_secs(60) < *until
        {
            return Ok(t.clone());
        }
        let form = format!(
            "grant_type={}&assertion={}",
            percent_encoding::utf8_percent_encode(
                "urn:ietf:params:oauth:grant-type:jwt-bearer",
                percent_encoding::NON_ALPHANUMERIC
            ),
            self.assertion()?
        );
        let mut resp = http.send("AUTH", "", &Body::Bytes(form.as_bytes()), &TokenClassify, &mut || {
            Ok(Prepared {
                method: "POST",
                url: self.token_uri.clone(),
                headers: vec![
                    ("content-type".into(), "application/x-www-form-urlencoded".into()),
                    ("content-length".into(), form.len().to_string()),
                ],
            })
        })?;
        let a: TokenAnswer = serde_json::from_slice(&read_body(&mut resp, 1 << 20)?)
            .map_err(|e| Error::new(Kind::Protocol, format!("malformed answer from the token endpoint: {e}")))?;
        let life = Duration::from_secs(if a.expires_in == 0 { 3600 } else { a.expires_in });
        *g = Some((a.access_token.clone(), Instant::now() + life));
        Ok(a.access_token)
    }
}
