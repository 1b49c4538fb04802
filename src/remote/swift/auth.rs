//! Swift authentication (rclone uses ncw/swift's): v1 (`X-Auth-User`/`X-Auth-Key`),
//! Keystone v2 (`/tokens`) and v3 (`/auth/tokens`, password or application credential),
//! or a given storage URL and token. The storage URL comes from the service catalog's
//! `object-store` entry for the region and interface asked for.

use crate::error::{Error, Kind, Result};
use crate::remote::kit::classify::{self, Failure, Retry};
use crate::remote::kit::http::{Body, Classify, HttpClient, Prepared, header, read_body};
use serde_json::{Value, json};

/// The credential, as TrueNAS stores it (rclone's option names).
#[derive(Clone, Default)]
pub struct SwiftAuth {
    pub user: String,
    pub key: String,
    pub auth: String,
    pub user_id: String,
    pub domain: String,
    pub tenant: String,
    pub tenant_id: String,
    pub tenant_domain: String,
    pub region: String,
    pub storage_url: String,
    pub auth_token: String,
    pub application_credential_id: String,
    pub application_credential_name: String,
    pub application_credential_secret: String,
    /// 0: from the URL.
    pub auth_version: u8,
    /// `public` (default), `internal` or `admin`.
    pub endpoint_type: String,
}

impl std::fmt::Debug for SwiftAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwiftAuth").field("auth", &self.auth).field("auth_version", &self.auth_version).finish()
    }
}

/// Where to send object requests, and with which token.
pub struct Session {
    pub storage_url: String,
    pub token: String,
}

impl SwiftAuth {
    /// The auth version to use: the one given, else read from the URL (ncw/swift's rule).
    pub fn version(&self) -> Result<u8> {
        if self.auth_version != 0 {
            return Ok(self.auth_version);
        }
        let u = self.auth.trim_end_matches('/');
        if u.contains("v3") {
            Ok(3)
        } else if u.contains("v2") {
            Ok(2)
        } else if u.contains("v1") {
            Ok(1)
        } else {
            Err(Error::usage(
                "Can't find AuthVersion in AuthUrl - set explicitly (auth_version 1, 2 or 3, or an auth URL ending in v1.0, v2.0 or v3)",
            ))
        }
    }

    fn interface(&self) -> &str {
        if self.endpoint_type.is_empty() { "public" } else { &self.endpoint_type }
    }

    /// Authenticate (or take the given storage URL and token).
    pub fn login(&self, http: &HttpClient) -> Result<Session> {
        if !self.storage_url.is_empty() && !self.auth_token.is_empty() {
            return Ok(Session {
                storage_url: self.storage_url.trim_end_matches('/').into(),
                token: self.auth_token.clone(),
            });
        }
        let (url, token) = match self.version()? {
            1 => self.v1(http)?,
            2 => self.v2(http)?,
            3 => self.v3(http)?,
            v => return Err(Error::usage(format!("auth_version {v} is not 1, 2 or 3"))),
        };
        // A storage URL in the credential overrides the catalog's.
        let url = if self.storage_url.is_empty() { url } else { self.storage_url.clone() };
        if url.is_empty() {
            return Err(Error::new(Kind::Protocol, "the Swift authentication answer names no storage URL"));
        }
        Ok(Session { storage_url: url.trim_end_matches('/').into(), token })
    }

    fn v1(&self, http: &HttpClient) -> Result<(String, String)> {
        let resp = http.send("AUTH", "", &Body::Empty, &AuthClassify, &mut || {
            Ok(Prepared {
                method: "GET",
                url: self.auth.clone(),
                headers: vec![("x-auth-user".into(), self.user.clone()), ("x-auth-key".into(), self.key.clone())],
            })
        })?;
        let url = header(&resp, "x-storage-url").unwrap_or("").to_string();
        let token = header(&resp, "x-auth-token")
            .or_else(|| header(&resp, "x-storage-token"))
            .ok_or_else(|| Error::new(Kind::Protocol, "the Swift v1 authentication answer has no token"))?
            .to_string();
        Ok((url, token))
    }

    fn v2(&self, http: &HttpClient) -> Result<(String, String)> {
        let mut auth = json!({"passwordCredentials": {"username": self.user, "password": self.key}});
        if !self.tenant.is_empty() {
            auth["tenantName"] = Value::String(self.tenant.clone());
        }
        if !self.tenant_id.is_empty() {
            auth["tenantId"] = Value::String(self.tenant_id.clone());
        }
        let body = json!({"auth": auth}).to_string();
        let url = format!("{}/tokens", self.auth.trim_end_matches('/'));
        let v = post_json(http, &url, &body)?.1;
        let token = v["access"]["token"]["id"].as_str().unwrap_or("").to_string();
        let field = format!("{}URL", self.interface());
        let url = catalog(&v["access"]["serviceCatalog"], &self.region, |e| e[&field].as_str(), |_| true);
        if token.is_empty() {
            return Err(Error::new(Kind::Protocol, "the Keystone v2 answer has no token"));
        }
        Ok((url.unwrap_or_default(), token))
    }

    fn v3(&self, http: &HttpClient) -> Result<(String, String)> {
        let identity = if !self.application_credential_id.is_empty() || !self.application_credential_name.is_empty() {
            let mut ac = json!({"secret": self.application_credential_secret});
            if !self.application_credential_id.is_empty() {
                ac["id"] = Value::String(self.application_credential_id.clone());
            } else {
                ac["name"] = Value::String(self.application_credential_name.clone());
                ac["user"] = self.user_ref()?;
            }
            json!({"methods": ["application_credential"], "application_credential": ac})
        } else {
            let mut user = self.user_ref()?;
            user["password"] = Value::String(self.key.clone());
            json!({"methods": ["password"], "password": {"user": user}})
        };
        let mut auth = json!({"identity": identity});
        if !self.tenant_id.is_empty() {
            auth["scope"] = json!({"project": {"id": self.tenant_id}});
        } else if !self.tenant.is_empty() {
            let domain = if self.tenant_domain.is_empty() { &self.domain } else { &self.tenant_domain };
            let domain = if domain.is_empty() { "Default" } else { domain };
            auth["scope"] = json!({"project": {"name": self.tenant, "domain": {"name": domain}}});
        }
        let body = json!({"auth": auth}).to_string();
        let url = format!("{}/auth/tokens", self.auth.trim_end_matches('/'));
        let (token, v) = post_json(http, &url, &body)?;
        let token = token.ok_or_else(|| Error::new(Kind::Protocol, "the Keystone v3 answer has no X-Subject-Token"))?;
        let interface = self.interface();
        let url = catalog(&v["token"]["catalog"], &self.region, |e| e["url"].as_str(), |e| e["interface"] == interface);
        Ok((url.unwrap_or_default(), token))
    }

    fn user_ref(&self) -> Result<Value> {
        if !self.user_id.is_empty() {
            return Ok(json!({"id": self.user_id}));
        }
        if self.user.is_empty() {
            return Err(Error::usage("Keystone v3 needs a user name or a user_id"));
        }
        let domain = if self.domain.is_empty() { "Default" } else { &self.domain };
        Ok(json!({"name": self.user, "domain": {"name": domain}}))
    }
}

/// The object-store endpoint of a service catalog for `region` (any region when empty).
fn catalog<'v>(
    services: &'v Value,
    region: &str,
    url: impl Fn(&'v Value) -> Option<&'v str>,
    matches: impl Fn(&'v Value) -> bool,
) -> Option<String> {
    let services = services.as_array()?;
    let store = services.iter().find(|s| s["type"] == "object-store")?;
    store["endpoints"]
        .as_array()?
        .iter()
        .filter(|e| matches(e))
        .filter(|e| region.is_empty() || e["region"] == region || e["region_id"] == region)
        .find_map(|e| url(e).map(str::to_string))
}

fn post_json(http: &HttpClient, url: &str, body: &str) -> Result<(Option<String>, Value)> {
    let mut resp = http.send("AUTH", "", &Body::Bytes(body.as_bytes()), &AuthClassify, &mut || {
        Ok(Prepared {
            method: "POST",
            url: url.to_string(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("content-length".into(), body.len().to_string()),
            ],
        })
    })?;
    let token = header(&resp, "x-subject-token").map(str::to_string);
    let v = serde_json::from_slice(&read_body(&mut resp, 16 << 20)?)
        .map_err(|e| Error::new(Kind::Protocol, format!("malformed Keystone answer: {e}")))?;
    Ok((token, v))
}

/// Authentication failures, in words that say what to check.
struct AuthClassify;
impl Classify for AuthClassify {
    fn status(&self, status: u16, headers: &ureq::http::HeaderMap, body: &[u8], _what: &str) -> Failure {
        match status {
            401 | 403 => Failure::new(
                Kind::Permission,
                "Swift refused the credentials: check the user name, the key (password) and the tenant",
                Retry::No,
            ),
            // The answer's text is left out: a server may echo the request, password included.
            400 => Failure::new(
                Kind::Usage,
                "the authentication request was refused as malformed: check auth_version, the domain (Keystone v3 usually needs 'Default') and the tenant",
                Retry::No,
            ),
            _ => classify::default(status, headers, body, "Swift authentication"),
        }
    }
}
