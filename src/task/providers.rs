//! The provider registry: the 18 credential types of TrueNAS Cloud Sync, their credential
//! schemas, the task attributes each accepts, and everything derived from those tables
//! (`cloudsync.providers`, redaction, the remote path, the script environment).
//!
//! Owns: schema validation of a credential's `provider` object and of a task's `attributes`
//! (rules V3–V7, V9, V10 of the spec, with the exact TrueNAS/pydantic texts and cloudsync's
//! fixes F10, F11, F12), and which fields are secret.
//! Must not: touch the network, the store or the engine. Values are returned as given; the
//! translation to backend options (WebDAV `vendor`, OneDrive `drive_type`, S3 region
//! resolution, chunk sizes) belongs to whoever builds a backend configuration, which may use
//! [`rclone_webdav_vendor`] and [`rclone_onedrive_drive_type`] so that every operation maps
//! them the same way (F14).
//!
//! Secret fields. TrueNAS wraps almost every credential field in pydantic `Secret`, including
//! hosts, ports, user names and flags. cloudsync keeps a field secret when knowing it helps
//! someone reach or impersonate the account: access keys and their ids, account names and ids
//! used as credentials (Azure `account`, B2 `account`), keys, passwords, OAuth tokens, client
//! ids and secrets, the GCS service-account JSON, Google Drive `team_drive`, OneDrive
//! `drive_id`, and every Swift field except the two enum knobs (Swift's tenant and domain names
//! scope its credentials). Not secret: what §7.6 exports to scripts (S3/Storj/Azure `endpoint`,
//! S3 `region`, FTP/SFTP `host`/`port`/`user`, WebDAV `user`, HTTP/WebDAV `url`); pure
//! behaviour knobs that name no account (S3 `skip_region`, `signatures_v2`,
//! `max_upload_parts`, `provider`, `force_path_style`, `sign_accept_encoding`; WebDAV
//! `vendor`; OneDrive `drive_type`; pCloud `hostname`, which only picks the EU or US API host;
//! Swift `auth_version` and `endpoint_type`); and SFTP `private_key`, which is the id of a
//! keychain entry, not key material. Unknown fields count as secret so that redaction fails
//! closed.

use serde_json::{Map, Value, json};

pub use crate::remote::schema::*;

/// One provider type with its class flags (TrueNAS `BaseRcloneRemote`).
#[derive(Debug)]
pub struct ProviderSpec {
    pub type_name: &'static str,
    pub title: &'static str,
    pub rclone_type: &'static str,
    pub credential_fields: &'static [FieldSpec],
    pub buckets: bool,
    pub bucket_title: &'static str,
    pub fast_list: bool,
    /// The OAuth portal name (`https://www.truenas.com/oauth/<name>`); `None` = no portal.
    pub oauth_name: Option<&'static str>,
    /// The provider refreshes its OAuth token during operations; the new token is written back.
    pub refresh_credentials: bool,
    /// PULL only (HTTP): PUSH is rejected with V22.
    pub readonly: bool,
    pub can_create_bucket: bool,
    pub custom_list_buckets: bool,
    /// The provider's own task attributes, after `bucket`, `folder` and `fast_list`.
    pub task_attributes: &'static [FieldSpec],
}

use FieldType::{Bool, Enum, EnumOrNull, Int, IntEnumOrNull, IntOrNull, Json, LongStr, Str, StrOrNull};

const CLIENT_ID: FieldSpec = FieldSpec::new("client_id", Str).sec().or(d_empty);
const CLIENT_SECRET: FieldSpec = FieldSpec::new("client_secret", Str).sec().or(d_empty);
const TOKEN: FieldSpec = FieldSpec::new("token", LongStr).sec().chk(Check::NonEmpty);

const OAUTH_FIELDS: &[FieldSpec] = &[CLIENT_ID, CLIENT_SECRET, TOKEN];
const GOOGLE_DRIVE_FIELDS: &[FieldSpec] =
    &[CLIENT_ID, CLIENT_SECRET, TOKEN, FieldSpec::new("team_drive", Str).sec().or(d_empty)];
const HUBIC_FIELDS: &[FieldSpec] = &[TOKEN];
const ONEDRIVE_DRIVE_TYPES: &[&str] = &["PERSONAL", "BUSINESS", "DOCUMENT_LIBRARY"];
const ONEDRIVE_FIELDS: &[FieldSpec] = &[
    CLIENT_ID,
    CLIENT_SECRET,
    TOKEN,
    FieldSpec::new("drive_type", Enum(ONEDRIVE_DRIVE_TYPES)),
    FieldSpec::new("drive_id", Str).sec(),
];
const PCLOUD_FIELDS: &[FieldSpec] = &[CLIENT_ID, CLIENT_SECRET, TOKEN, FieldSpec::new("hostname", Str).or(d_empty)];

// Task attributes (`CloudTaskAttributes`). API names are used throughout: TrueNAS's internal
// `b2_chunk_size` / `dropbox_chunk_size` never appear (F10).
const FAST_LIST: FieldSpec = FieldSpec::new("fast_list", Bool).or(d_false);
const DROPBOX_ATTRIBUTES: &[FieldSpec] = &[FieldSpec::new("chunk_size", Int).or(d_dropbox_chunk)];
const GOOGLE_DRIVE_ATTRIBUTES: &[FieldSpec] = &[FieldSpec::new("acknowledge_abuse", Bool).or(d_false)];

const BASE: ProviderSpec = ProviderSpec {
    type_name: "",
    title: "",
    rclone_type: "",
    credential_fields: &[],
    buckets: false,
    bucket_title: "Bucket",
    fast_list: false,
    oauth_name: None,
    refresh_credentials: false,
    readonly: false,
    can_create_bucket: false,
    custom_list_buckets: false,
    task_attributes: &[],
};

/// Sorted by lower-cased title, the order `cloudsync.providers` lists them in.
static PROVIDERS: [ProviderSpec; 18] = [
    ProviderSpec {
        type_name: "S3",
        title: "Amazon S3",
        rclone_type: "s3",
        credential_fields: crate::remote::s3::provider::S3_FIELDS,
        buckets: true,
        fast_list: true,
        task_attributes: crate::remote::s3::provider::S3_ATTRIBUTES,
        ..BASE
    },
    ProviderSpec {
        type_name: "B2",
        title: "Backblaze B2",
        rclone_type: "b2",
        credential_fields: crate::remote::b2::provider::FIELDS,
        buckets: true,
        fast_list: true,
        task_attributes: crate::remote::b2::provider::ATTRIBUTES,
        ..BASE
    },
    ProviderSpec {
        type_name: "BOX",
        title: "Box",
        rclone_type: "box",
        credential_fields: OAUTH_FIELDS,
        oauth_name: Some("box"),
        refresh_credentials: true,
        ..BASE
    },
    // TrueNAS does not refresh Dropbox tokens; cloudsync writes refreshed tokens back for every
    // OAuth provider (F15), which is the job runner's concern, so the flag mirrors TrueNAS.
    ProviderSpec {
        type_name: "DROPBOX",
        title: "Dropbox",
        rclone_type: "dropbox",
        credential_fields: OAUTH_FIELDS,
        oauth_name: Some("dropbox"),
        task_attributes: DROPBOX_ATTRIBUTES,
        ..BASE
    },
    ProviderSpec {
        type_name: "FTP",
        title: "FTP",
        rclone_type: "ftp",
        credential_fields: crate::remote::ftp::provider::FIELDS,
        ..BASE
    },
    ProviderSpec {
        type_name: "GOOGLE_CLOUD_STORAGE",
        title: "Google Cloud Storage",
        rclone_type: "google cloud storage",
        credential_fields: crate::remote::gcs::provider::FIELDS,
        buckets: true,
        fast_list: true,
        task_attributes: crate::remote::gcs::provider::ATTRIBUTES,
        ..BASE
    },
    ProviderSpec {
        type_name: "GOOGLE_DRIVE",
        title: "Google Drive",
        rclone_type: "drive",
        credential_fields: GOOGLE_DRIVE_FIELDS,
        fast_list: true,
        oauth_name: Some("google_drive"),
        refresh_credentials: true,
        task_attributes: GOOGLE_DRIVE_ATTRIBUTES,
        ..BASE
    },
    // No portal: Google rate-limited the shared app, so users bring their own client.
    ProviderSpec {
        type_name: "GOOGLE_PHOTOS",
        title: "Google Photos",
        rclone_type: "googlephotos",
        credential_fields: OAUTH_FIELDS,
        refresh_credentials: true,
        ..BASE
    },
    ProviderSpec {
        type_name: "HTTP",
        title: "HTTP",
        rclone_type: "http",
        credential_fields: crate::remote::http::provider::FIELDS,
        readonly: true,
        ..BASE
    },
    ProviderSpec {
        type_name: "HUBIC",
        title: "Hubic",
        rclone_type: "hubic",
        credential_fields: HUBIC_FIELDS,
        buckets: true,
        bucket_title: "Container",
        fast_list: true,
        ..BASE
    },
    ProviderSpec {
        type_name: "AZUREBLOB",
        title: "Microsoft Azure Blob Storage",
        rclone_type: "azureblob",
        credential_fields: crate::remote::azureblob::provider::FIELDS,
        buckets: true,
        bucket_title: "Container",
        fast_list: true,
        ..BASE
    },
    ProviderSpec {
        type_name: "ONEDRIVE",
        title: "Microsoft OneDrive",
        rclone_type: "onedrive",
        credential_fields: ONEDRIVE_FIELDS,
        oauth_name: Some("onedrive"),
        refresh_credentials: true,
        ..BASE
    },
    ProviderSpec {
        type_name: "OPENSTACK_SWIFT",
        title: "OpenStack Swift",
        rclone_type: "swift",
        credential_fields: crate::remote::swift::provider::FIELDS,
        buckets: true,
        bucket_title: "Container",
        fast_list: true,
        ..BASE
    },
    ProviderSpec {
        type_name: "PCLOUD",
        title: "pCloud",
        rclone_type: "pcloud",
        credential_fields: PCLOUD_FIELDS,
        oauth_name: Some("pcloud2"),
        refresh_credentials: true,
        ..BASE
    },
    ProviderSpec {
        type_name: "SFTP",
        title: "SFTP",
        rclone_type: "sftp",
        credential_fields: crate::remote::sftp::provider::FIELDS,
        ..BASE
    },
    ProviderSpec {
        type_name: "STORJ_IX",
        title: "Storj",
        rclone_type: "s3",
        credential_fields: crate::remote::s3::provider::STORJ_FIELDS,
        buckets: true,
        fast_list: true,
        can_create_bucket: true,
        custom_list_buckets: true,
        ..BASE
    },
    ProviderSpec {
        type_name: "WEBDAV",
        title: "WebDAV",
        rclone_type: "webdav",
        credential_fields: crate::remote::webdav::provider::FIELDS,
        ..BASE
    },
    ProviderSpec {
        type_name: "YANDEX",
        title: "Yandex",
        rclone_type: "yandex",
        credential_fields: OAUTH_FIELDS,
        fast_list: true,
        oauth_name: Some("yandex"),
        refresh_credentials: true,
        ..BASE
    },
];

/// The discriminator tags in TrueNAS's union order, for the unknown-type message (and the
/// list of provider types every other module uses).
pub const TAG_ORDER: [&str; 18] = [
    "AZUREBLOB",
    "B2",
    "BOX",
    "DROPBOX",
    "FTP",
    "GOOGLE_CLOUD_STORAGE",
    "GOOGLE_DRIVE",
    "GOOGLE_PHOTOS",
    "HTTP",
    "HUBIC",
    "ONEDRIVE",
    "PCLOUD",
    "S3",
    "SFTP",
    "STORJ_IX",
    "OPENSTACK_SWIFT",
    "WEBDAV",
    "YANDEX",
];

/// Every provider, sorted by title as `cloudsync.providers` lists them.
pub fn all() -> &'static [ProviderSpec] {
    &PROVIDERS
}

/// The provider of a credential `type` (exact, upper-case spelling).
pub fn get(type_name: &str) -> Option<&'static ProviderSpec> {
    PROVIDERS.iter().find(|p| p.type_name == type_name)
}

/// The attribute subset a provider's tasks accept, in TrueNAS's order: `bucket` (bucket
/// providers), `folder`, `fast_list` (if supported), then the provider's own attributes.
pub fn task_schema(provider: &ProviderSpec) -> Vec<&'static FieldSpec> {
    let mut fields = Vec::with_capacity(3 + provider.task_attributes.len());
    if provider.buckets {
        fields.push(&BUCKET);
    }
    fields.push(&FOLDER);
    if provider.fast_list {
        fields.push(&FAST_LIST);
    }
    fields.extend(provider.task_attributes.iter());
    fields
}

fn key(prefix: &str, field: &str) -> String {
    if prefix.is_empty() { field.to_string() } else { format!("{prefix}.{field}") }
}

/// pydantic's `literal_error` text: `Input should be 'A', 'B' or 'C'`.
fn literal_message(options: &[String]) -> String {
    let list = match options {
        [] => String::new(),
        [one] => one.clone(),
        [head @ .., last] => format!("{} or {last}", head.join(", ")),
    };
    format!("Input should be {list}")
}

fn str_literals(options: &[&str]) -> String {
    literal_message(&options.iter().map(|o| format!("'{o}'")).collect::<Vec<_>>())
}

fn is_int(v: &Value) -> bool {
    // A JSON float (`5.0`, `1e3`) is not an integer under strict validation.
    v.as_i64().is_some() || v.as_u64().is_some()
}

fn azure_account_ok(s: &str) -> bool {
    // Equivalent to TrueNAS's `^[a-z0-9\-.]+$` (IGNORECASE), except that Python's `$` also
    // accepts a trailing newline; a newline in an account name is never valid.
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// The first problem with an http(s) URL, worded as pydantic words it. The value is kept as
/// given (pydantic would re-serialise it), so characters its parser silently drops are refused.
fn http_url_error(v: &Value) -> Option<String> {
    let Some(s) = v.as_str() else {
        return Some("URL input should be a string or URL".into());
    };
    let invalid = |why: &str| Some(format!("Input should be a valid URL, {why}"));
    if s.chars().count() > MAX_URL {
        return Some(format!("URL should have at most {MAX_URL} characters"));
    }
    if s.is_empty() {
        return invalid("input is empty");
    }
    if s.chars().any(char::is_control) || s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return invalid("control characters and surrounding whitespace are not allowed");
    }
    let Some((scheme, rest)) = s.split_once(':') else {
        return invalid("relative URL without a base");
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return invalid("relative URL without a base");
    }
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        return Some("URL scheme should be 'http' or 'https'".into());
    }
    let rest = rest.trim_start_matches(['/', '\\']);
    let authority = rest.split(['/', '\\', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let Some((inside, tail)) = bracketed.split_once(']') else {
            return invalid("invalid IPv6 address");
        };
        if inside.is_empty() || !inside.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
            return invalid("invalid IPv6 address");
        }
        match tail {
            "" => (inside, None),
            t => match t.strip_prefix(':') {
                Some(p) => (inside, Some(p)),
                None => return invalid("invalid port number"),
            },
        }
    } else {
        match host_port.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return invalid("empty host");
    }
    // WHATWG's forbidden host code points that can still be here after the splits above.
    const FORBIDDEN: &[char] = &[' ', '<', '>', '^', '|', '[', ']'];
    if !host_port.starts_with('[') && host.contains(FORBIDDEN) {
        return invalid("invalid domain character");
    }
    if let Some(p) = port
        && !p.is_empty()
        && !(p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u32>().is_ok_and(|n| n <= 65535))
    {
        return invalid("invalid port number");
    }
    None
}

/// Checks one present value against its field; the message is the pydantic text.
fn field_error(f: &FieldSpec, v: &Value) -> Option<String> {
    match f.check {
        Check::HttpUrl => return http_url_error(v),
        Check::EmptyOrHttpUrl => {
            if v.as_str() == Some("") {
                return None;
            }
            // A union reports each member's error, joined (TrueNAS `validate_model`).
            return http_url_error(v).map(|e| format!("Input should be '' or {e}"));
        }
        Check::HttpsUrl => {
            if let Some(e) = http_url_error(v) {
                return Some(e);
            }
            let https =
                v.as_str().and_then(|s| s.split_once(':')).is_some_and(|(s, _)| s.eq_ignore_ascii_case("https"));
            return (!https).then(|| "Value error, URL scheme must be https".to_string());
        }
        Check::None | Check::NonEmpty | Check::AzureAccount => {}
    }
    match f.ty {
        Str | LongStr | Json => string_error(f, v),
        StrOrNull => (!v.is_null()).then(|| string_error(f, v)).flatten(),
        Int => (!is_int(v)).then(|| "Input should be a valid integer".to_string()),
        IntOrNull => (!v.is_null() && !is_int(v)).then(|| "Input should be a valid integer".to_string()),
        Bool => (!v.is_boolean()).then(|| "Input should be a valid boolean".to_string()),
        Enum(options) => (!v.as_str().is_some_and(|s| options.contains(&s))).then(|| str_literals(options)),
        EnumOrNull(options) => {
            (!v.is_null() && !v.as_str().is_some_and(|s| options.contains(&s))).then(|| str_literals(options))
        }
        IntEnumOrNull(options) => {
            let ok = v.is_null() || v.as_i64().is_some_and(|n| options.contains(&n));
            (!ok).then(|| literal_message(&options.iter().map(i64::to_string).collect::<Vec<_>>()))
        }
    }
}

fn string_error(f: &FieldSpec, v: &Value) -> Option<String> {
    let Some(s) = v.as_str() else {
        return Some("Input should be a valid string".into());
    };
    let non_empty = matches!(f.check, Check::NonEmpty | Check::AzureAccount) || f.ty == Json;
    if non_empty && s.is_empty() {
        return Some("String should have at least 1 character".into());
    }
    // Python counts code points, not bytes.
    if matches!(f.ty, Str | StrOrNull) && s.chars().count() > MAX_STR {
        return Some(format!("String should have at most {MAX_STR} characters"));
    }
    if f.check == Check::AzureAccount && !azure_account_ok(s) {
        // `match_validator` asserts, and pydantic prefixes assertion messages.
        return Some("Assertion failed, Account Name field can only contain alphanumeric characters, - and .".into());
    }
    if f.ty == Json {
        // TrueNAS only requires non-empty text and fails later, at run time, when it parses
        // the key file; catching it here names the field.
        return match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(_)) => None,
            Ok(_) => Some("Input should be a JSON object".into()),
            Err(e) => Some(format!("Invalid JSON: {e}")),
        };
    }
    None
}

/// Validates `obj` against `fields`: present values are checked, missing ones defaulted or
/// reported, unknown keys (other than `allowed_extra`) refused. Errors come in field order,
/// then unknown keys in input order, as pydantic reports them.
fn validate_fields(
    prefix: &str,
    fields: &[&FieldSpec],
    obj: &Map<String, Value>,
    allowed_extra: &[&str],
    errors: &mut Errors,
) -> Map<String, Value> {
    let mut out = Map::new();
    for f in fields {
        match obj.get(f.name) {
            Some(v) => match field_error(f, v) {
                Some(msg) => errors.push((key(prefix, f.name), msg)),
                None => {
                    out.insert(f.name.to_string(), v.clone());
                }
            },
            None => match f.default {
                Some(default) => {
                    out.insert(f.name.to_string(), default());
                }
                None if f.required => errors.push((key(prefix, f.name), "Field required".into())),
                None => {}
            },
        }
    }
    for k in obj.keys() {
        if !allowed_extra.contains(&k.as_str()) && !fields.iter().any(|f| f.name == k) {
            errors.push((key(prefix, k), "Extra inputs are not permitted".into()));
        }
    }
    out
}

const NOT_A_DICT: &str = "Input should be a valid dictionary";

/// Validate a credential `provider` object ({"type": ..., fields...}) under key prefix `prefix`
/// (e.g. "cloudsync_credentials_create.provider"). Returns the object with every default
/// filled in; values are kept as given (no vendor or drive-type mapping here).
///
/// Keys are `<prefix>.<field>`. TrueNAS's pydantic union puts the tag in between
/// (`provider.S3.access_key_id`); cloudsync leaves it out, the tag being the `type` field.
pub fn validate_credential(prefix: &str, provider: &Value) -> Result<Map<String, Value>, Errors> {
    let Some(obj) = provider.as_object() else {
        return Err(vec![(prefix.to_string(), NOT_A_DICT.into())]);
    };
    let spec = match obj.get("type") {
        None => return Err(vec![(key(prefix, "type"), "Field required".into())]),
        Some(Value::String(t)) => get(t),
        Some(_) => None,
    };
    let Some(spec) = spec else {
        let tag = match obj.get("type") {
            Some(Value::String(t)) => t.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let expected = TAG_ORDER.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ");
        let msg = format!("Input tag '{tag}' found using 'type' does not match any of the expected tags: {expected}");
        return Err(vec![(key(prefix, "type"), msg)]);
    };
    let mut errors = Errors::new();
    let fields: Vec<&FieldSpec> = spec.credential_fields.iter().collect();
    let fields_out = validate_fields(prefix, &fields, obj, &["type"], &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut out = Map::new();
    out.insert("type".into(), Value::String(spec.type_name.into()));
    out.extend(fields_out);
    Ok(out)
}

/// Validate a task's `attributes` against the provider's subset of §2 under `prefix` = the
/// schema name (e.g. "cloud_sync_create"); keys are "<prefix>.attributes.<key>".
///
/// Order as TrueNAS: schema errors (V3) first and alone; then the provider's basic checks
/// (V4–V7); then, if those pass, the full check (V9, V10). TrueNAS also skips the full check
/// when the task has other errors (e.g. V8); that is the caller's to decide, as this function
/// sees only the attributes. No network: S3 region detection happens at job start (§3.4).
pub fn validate_task_attributes(
    prefix: &str,
    provider: &ProviderSpec,
    attributes: &Value,
) -> Result<Map<String, Value>, Errors> {
    let prefix = key(prefix, "attributes");
    let Some(obj) = attributes.as_object() else {
        return Err(vec![(prefix, NOT_A_DICT.into())]);
    };
    let mut errors = Errors::new();
    let out = validate_fields(&prefix, &task_schema(provider), obj, &[], &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    basic_checks(&prefix, provider, &out, &mut errors);
    if errors.is_empty() {
        full_checks(&prefix, provider, &out, &mut errors);
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

fn basic_checks(prefix: &str, provider: &ProviderSpec, attrs: &Map<String, Value>, errors: &mut Errors) {
    // Out-of-range u64 values are larger than any bound here.
    let chunk = || attrs.get("chunk_size").map(|v| v.as_i64().unwrap_or(i64::MAX));
    match provider.type_name {
        "B2" => {
            if let Some(n) = chunk()
                && n < 5
            {
                errors.push((key(prefix, "chunk_size"), "Must be greater than or equal to 5".into()));
            }
        }
        "DROPBOX" => {
            if let Some(n) = chunk() {
                if n < 5 {
                    errors.push((key(prefix, "chunk_size"), "Must be greater than or equal to 5".into()));
                }
                // TrueNAS says "Must be less than 5" here (F11).
                if n >= 150 {
                    errors.push((key(prefix, "chunk_size"), "Must be less than 150".into()));
                }
            }
        }
        "S3" => {
            let ok = match attrs.get("encryption") {
                None | Some(Value::Null) => true,
                Some(v) => matches!(v.as_str(), Some("" | "AES256")),
            };
            if !ok {
                errors.push((key(prefix, "encryption"), "Encryption should be null or \"AES256\"".into()));
            }
        }
        _ => {}
    }
}

fn full_checks(prefix: &str, provider: &ProviderSpec, attrs: &Map<String, Value>, errors: &mut Errors) {
    if provider.type_name != "GOOGLE_PHOTOS" {
        return;
    }
    // `media/by-day` holds an empty directory for every day since 2000; listing it (or the
    // root, or `media`, which contain it) never finishes under Google's rate limits.
    let folder = attrs.get("folder").and_then(Value::as_str).unwrap_or_default().trim_matches('/');
    if folder.is_empty() {
        errors.push((
            key(prefix, "folder"),
            "Pulling from the root directory is not allowed. Please, select a specific directory.".into(),
        ));
        return;
    }
    let folder = normpath(folder);
    for prohibited in ["media", "media/by-day"] {
        if folder == prohibited {
            errors.push((
                key(prefix, "folder"),
                format!("Pulling from the {prohibited} directory is not allowed. Please, select a specific directory."),
            ));
            return;
        }
    }
}

/// Python's `os.path.normpath` for a relative path: drops empty and `.` components and
/// resolves `..` lexically, so `media//./by-day` cannot slip past V10.
fn normpath(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() { ".".into() } else { parts.join("/") }
}

/// The remote path of §2.1: `folder` without trailing slashes (`/` if nothing is left);
/// bucket providers prepend `<bucket>/` and drop the folder's leading slashes. Other providers
/// keep a leading slash, because for FTP and SFTP `/data` is absolute while `data` is relative
/// to the login directory.
pub fn remote_path(provider: &ProviderSpec, attributes: &Map<String, Value>) -> String {
    let text = |k: &str| attributes.get(k).and_then(Value::as_str).unwrap_or_default();
    let mut path = text("folder").trim_end_matches('/');
    if path.is_empty() {
        path = "/";
    }
    if provider.buckets { format!("{}/{}", text("bucket"), path.trim_start_matches('/')) } else { path.to_string() }
}

const OAUTH_URL: &str = "https://www.truenas.com/oauth";

/// `cloudsync.providers`, sorted by title. `task_schema` advertises the API attribute names
/// (`chunk_size`), not TrueNAS's internal ones (F10).
/// One field as `cloudsync.providers` lists it: `{property, schema}` with a JSON-schema
/// style type, whether it is required, secret (`_secret_`) and its default.
fn field_schema(f: &FieldSpec) -> Value {
    let (ty, extra) = match f.ty {
        FieldType::Str | FieldType::LongStr | FieldType::Json => (json!("string"), None),
        FieldType::Int => (json!("integer"), None),
        FieldType::Bool => (json!("boolean"), None),
        FieldType::StrOrNull => (json!(["string", "null"]), None),
        FieldType::IntOrNull => (json!(["integer", "null"]), None),
        FieldType::Enum(v) => (json!("string"), Some(json!(v))),
        FieldType::EnumOrNull(v) => (json!(["string", "null"]), Some(json!(v))),
        FieldType::IntEnumOrNull(v) => (json!(["integer", "null"]), Some(json!(v))),
        #[allow(unreachable_patterns)]
        _ => (json!("string"), None),
    };
    let mut schema = json!({"type": ty, "_required_": f.required, "_secret_": f.secret});
    if let Some(e) = extra {
        schema["enum"] = e;
    }
    if let Some(d) = f.default {
        schema["default"] = d();
    }
    json!({"property": f.name, "schema": schema})
}

pub fn providers_listing() -> Value {
    Value::Array(
        all()
            .iter()
            .map(|p| {
                json!({
                    "name": p.type_name,
                    "title": p.title,
                    "credentials_oauth": p.oauth_name.map(|n| format!("{OAUTH_URL}/{n}")),
                    "buckets": p.buckets,
                    "bucket_title": p.bucket_title,
                    "credentials_schema": p.credential_fields.iter().map(field_schema).collect::<Vec<_>>(),
                    "task_schema": task_schema(p).into_iter().map(field_schema).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

/// Which credential fields are secret (redaction; see the module doc for the choices).
/// `type` never is; an unknown provider or field is, so that redaction fails closed.
pub fn is_secret(type_name: &str, field: &str) -> bool {
    if field == "type" {
        return false;
    }
    get(type_name).and_then(|p| p.credential_fields.iter().find(|f| f.name == field)).is_none_or(|f| f.secret)
}

/// The placeholder TrueNAS returns for secret fields.
pub const SECRET_PLACEHOLDER: &str = "********";

/// A credential `provider` object with every secret field replaced by `********`, for callers
/// below `CLOUD_SYNC_WRITE` (§12.3).
pub fn redact(credential: &Map<String, Value>) -> Map<String, Value> {
    let ty = credential.get("type").and_then(Value::as_str).unwrap_or_default();
    credential
        .iter()
        .map(|(k, v)| {
            let v = if is_secret(ty, k) { Value::String(SECRET_PLACEHOLDER.into()) } else { v.clone() };
            (k.clone(), v)
        })
        .collect()
}

/// rclone's WebDAV `vendor` value: the API value lower-cased, in every operation (F14).
pub fn rclone_webdav_vendor(vendor: &str) -> String {
    vendor.to_ascii_lowercase()
}

/// rclone's OneDrive `drive_type` for the API value, in every operation (F14).
pub fn rclone_onedrive_drive_type(drive_type: &str) -> Option<&'static str> {
    match drive_type {
        "PERSONAL" => Some("personal"),
        "BUSINESS" => Some("business"),
        "DOCUMENT_LIBRARY" => Some("documentLibrary"),
        _ => None,
    }
}

/// `CLOUD_SYNC_*` text for a JSON value: booleans as `1`/`0`, numbers in decimal; null,
/// arrays and objects have no text.
fn env_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.into()),
        _ => None,
    }
}

/// A URL without the password of its user-info: `https://u:pw@h/` → `https://u@h/`. An
/// endpoint or URL is not a secret, but a password written into one is.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

/// Credential fields exported to scripts: (variable suffix, field, provider types).
const CREDENTIAL_ENV: &[(&str, &str, &[&str])] = &[
    ("ENDPOINT", "endpoint", &["S3", "STORJ_IX", "AZUREBLOB"]),
    ("HOST", "host", &["FTP", "SFTP"]),
    ("PORT", "port", &["FTP", "SFTP"]),
    ("USER", "user", &["FTP", "SFTP", "WEBDAV"]),
    ("URL", "url", &["HTTP", "WEBDAV"]),
];

/// The `CLOUD_SYNC_*` variables of §7.6 that come from the credential and the attributes, in
/// the table's order. Only allow-listed, non-secret fields are read, so no secret can leak
/// (F6); the task-level variables (ID, DIRECTION, ENCRYPTION, PATH, ...) are the job runner's.
pub fn script_env(
    type_name: &str,
    credential: &Map<String, Value>,
    attributes: &Map<String, Value>,
) -> Vec<(String, String)> {
    let mut env = vec![("CLOUD_SYNC_TYPE".to_string(), type_name.to_string())];
    let Some(provider) = get(type_name) else {
        return env;
    };
    let mut push = |name: &str, value: String| env.push((format!("CLOUD_SYNC_{name}"), value));
    let schema = task_schema(provider);
    // A missing attribute reads as its default, so callers may pass stored attributes as they are.
    let attr = |name: &str| -> Option<Value> {
        let f = schema.iter().find(|f| f.name == name)?;
        attributes.get(name).cloned().or_else(|| f.default.map(|d| d()))
    };
    let attr_text = |name: &str| attr(name).as_ref().and_then(env_text);

    for (var, name) in
        [("BUCKET", "bucket"), ("FOLDER", "folder"), ("FAST_LIST", "fast_list"), ("CHUNK_SIZE", "chunk_size")]
    {
        if let Some(v) = attr_text(name) {
            push(var, v);
        }
    }
    if let Some(v) = attr_text("storage_class") {
        push("STORAGE_CLASS", v);
    }
    // The S3 SSE value, never the task's crypt flag (F7).
    if let Some(v) = attr("encryption") {
        push("SERVER_SIDE_ENCRYPTION", env_text(&v).unwrap_or_default());
    }
    if type_name == "S3" {
        let region = attr_text("region").filter(|r| !r.trim().is_empty());
        let region = region.or_else(|| credential.get("region").and_then(env_text)).unwrap_or_default();
        push("REGION", region);
    }
    for (var, field, types) in CREDENTIAL_ENV {
        if !types.contains(&type_name) || is_secret(type_name, field) {
            continue;
        }
        if let Some(v) = credential.get(*field).and_then(env_text) {
            let v = if matches!(*field, "endpoint" | "url") { without_password(&v) } else { v };
            push(var, v);
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    fn p(t: &str) -> &'static ProviderSpec {
        get(t).unwrap_or_else(|| panic!("no provider {t}"))
    }

    const CP: &str = "cloudsync_credentials_create.provider";

    type Pair = (String, String);
    /// type, rclone type, buckets, bucket_title, fast_list, refresh, readonly, can_create_bucket, custom_list_buckets
    type Flags = (&'static str, &'static str, bool, &'static str, bool, bool, bool, bool, bool);
    const S: &str = "cloud_sync_create";

    fn cred_err(provider: Value) -> Errors {
        match validate_credential(CP, &provider) {
            Ok(m) => panic!("accepted {provider}: {m:?}"),
            Err(e) => e,
        }
    }

    fn one(errors: Errors) -> (String, String) {
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors.into_iter().next().unwrap_or_default()
    }

    fn e(k: &str, m: &str) -> (String, String) {
        (k.to_string(), m.to_string())
    }

    #[test]
    fn registry_has_all_18_types_once() {
        assert_eq!(all().len(), 18);
        let mut types: Vec<&str> = all().iter().map(|p| p.type_name).collect();
        types.sort_unstable();
        let mut tags = TAG_ORDER.to_vec();
        tags.sort_unstable();
        assert_eq!(types, tags);
        for t in TAG_ORDER {
            assert_eq!(p(t).type_name, t);
        }
        assert!(get("MEGA").is_none());
        assert!(get("s3").is_none());
    }

    #[test]
    fn flags_follow_the_provider_table() {
        #[rustfmt::skip]
        let table: &[Flags] = &[
            ("AZUREBLOB", "azureblob", true, "Container", true, false, false, false, false),
            ("B2", "b2", true, "Bucket", true, false, false, false, false),
            ("BOX", "box", false, "Bucket", false, true, false, false, false),
            ("DROPBOX", "dropbox", false, "Bucket", false, false, false, false, false),
            ("FTP", "ftp", false, "Bucket", false, false, false, false, false),
            ("GOOGLE_CLOUD_STORAGE", "google cloud storage", true, "Bucket", true, false, false, false, false),
            ("GOOGLE_DRIVE", "drive", false, "Bucket", true, true, false, false, false),
            ("GOOGLE_PHOTOS", "googlephotos", false, "Bucket", false, true, false, false, false),
            ("HTTP", "http", false, "Bucket", false, false, true, false, false),
            ("HUBIC", "hubic", true, "Container", true, false, false, false, false),
            ("ONEDRIVE", "onedrive", false, "Bucket", false, true, false, false, false),
            ("PCLOUD", "pcloud", false, "Bucket", false, true, false, false, false),
            ("S3", "s3", true, "Bucket", true, false, false, false, false),
            ("SFTP", "sftp", false, "Bucket", false, false, false, false, false),
            ("STORJ_IX", "s3", true, "Bucket", true, false, false, true, true),
            ("OPENSTACK_SWIFT", "swift", true, "Container", true, false, false, false, false),
            ("WEBDAV", "webdav", false, "Bucket", false, false, false, false, false),
            ("YANDEX", "yandex", false, "Bucket", true, true, false, false, false),
        ];
        for &(t, rclone, buckets, title, fast, refresh, ro, create, custom) in table {
            let s = p(t);
            assert_eq!(
                (s.rclone_type, s.buckets, s.bucket_title, s.fast_list, s.refresh_credentials, s.readonly),
                (rclone, buckets, title, fast, refresh, ro),
                "{t}"
            );
            assert_eq!((s.can_create_bucket, s.custom_list_buckets), (create, custom), "{t}");
        }
    }

    #[test]
    fn every_provider_accepts_minimal_fields_and_fills_defaults() {
        let gcs = r#"{"type": "service_account", "project_id": "p"}"#;
        let table: Vec<(Value, Value)> = vec![
            (
                json!({"type": "AZUREBLOB", "account": "acct", "key": "k"}),
                json!({"type": "AZUREBLOB", "account": "acct", "key": "k", "endpoint": ""}),
            ),
            (json!({"type": "B2", "account": "a", "key": "k"}), json!({"type": "B2", "account": "a", "key": "k"})),
            (
                json!({"type": "BOX", "token": "t"}),
                json!({"type": "BOX", "client_id": "", "client_secret": "", "token": "t"}),
            ),
            (
                json!({"type": "DROPBOX", "token": "t"}),
                json!({"type": "DROPBOX", "client_id": "", "client_secret": "", "token": "t"}),
            ),
            (
                json!({"type": "FTP", "host": "h", "user": "u"}),
                json!({"type": "FTP", "host": "h", "port": 21, "user": "u", "pass": ""}),
            ),
            (
                json!({"type": "GOOGLE_CLOUD_STORAGE", "service_account_credentials": gcs}),
                json!({"type": "GOOGLE_CLOUD_STORAGE", "service_account_credentials": gcs}),
            ),
            (
                json!({"type": "GOOGLE_DRIVE", "token": "t"}),
                json!({"type": "GOOGLE_DRIVE", "client_id": "", "client_secret": "", "token": "t", "team_drive": ""}),
            ),
            (
                json!({"type": "GOOGLE_PHOTOS", "token": "t"}),
                json!({"type": "GOOGLE_PHOTOS", "client_id": "", "client_secret": "", "token": "t"}),
            ),
            (json!({"type": "HTTP", "url": "https://h/x"}), json!({"type": "HTTP", "url": "https://h/x"})),
            (json!({"type": "HUBIC", "token": "t"}), json!({"type": "HUBIC", "token": "t"})),
            (
                json!({"type": "ONEDRIVE", "token": "t", "drive_type": "PERSONAL", "drive_id": ""}),
                json!({"type": "ONEDRIVE", "client_id": "", "client_secret": "", "token": "t",
                       "drive_type": "PERSONAL", "drive_id": ""}),
            ),
            (
                json!({"type": "PCLOUD", "token": "t"}),
                json!({"type": "PCLOUD", "client_id": "", "client_secret": "", "token": "t", "hostname": ""}),
            ),
            (
                json!({"type": "S3", "access_key_id": "A", "secret_access_key": "S"}),
                json!({"type": "S3", "access_key_id": "A", "secret_access_key": "S", "endpoint": "", "region": "",
                       "skip_region": false, "signatures_v2": false, "max_upload_parts": 10000, "provider": "Other",
                       "force_path_style": true, "sign_accept_encoding": true}),
            ),
            (
                json!({"type": "SFTP", "host": "h", "user": "u"}),
                json!({"type": "SFTP", "host": "h", "port": 22, "user": "u", "pass": null, "private_key": null}),
            ),
            (
                json!({"type": "STORJ_IX", "access_key_id": "A", "secret_access_key": "S"}),
                json!({"type": "STORJ_IX", "access_key_id": "A", "secret_access_key": "S",
                       "endpoint": "https://gateway.storjshare.io/"}),
            ),
            (
                json!({"type": "OPENSTACK_SWIFT", "user": "u", "key": "k", "auth": "https://a/v3",
                       "auth_version": null, "endpoint_type": null}),
                json!({"type": "OPENSTACK_SWIFT", "user": "u", "key": "k", "auth": "https://a/v3", "user_id": "",
                       "domain": "", "tenant": "", "tenant_id": "", "tenant_domain": "", "region": "",
                       "storage_url": "", "auth_token": "", "application_credential_id": "",
                       "application_credential_name": "", "application_credential_secret": "",
                       "auth_version": null, "endpoint_type": null}),
            ),
            (
                json!({"type": "WEBDAV", "url": "https://dav/", "vendor": "NEXTCLOUD", "user": "", "pass": ""}),
                json!({"type": "WEBDAV", "url": "https://dav/", "vendor": "NEXTCLOUD", "user": "", "pass": ""}),
            ),
            (
                json!({"type": "YANDEX", "token": "t"}),
                json!({"type": "YANDEX", "client_id": "", "client_secret": "", "token": "t"}),
            ),
        ];
        assert_eq!(table.len(), 18);
        for (input, expected) in table {
            assert_eq!(validate_credential(CP, &input).map(Value::Object), Ok(expected), "{input}");
        }
    }

    #[test]
    fn given_values_are_kept_including_vendor_and_drive_type() {
        let out = validate_credential(
            CP,
            &json!({"type": "WEBDAV", "url": "http://h", "vendor": "SHAREPOINT", "user": "u", "pass": "p"}),
        );
        assert_eq!(out.ok().and_then(|m| m.get("vendor").cloned()), Some(json!("SHAREPOINT")));
        let out = validate_credential(
            CP,
            &json!({"type": "ONEDRIVE", "token": "t", "drive_type": "DOCUMENT_LIBRARY", "drive_id": "d", "client_id": "c"}),
        );
        let out = out.ok().map(Value::Object);
        assert_eq!(out.as_ref().and_then(|m| m.get("drive_type")), Some(&json!("DOCUMENT_LIBRARY")));
        assert_eq!(out.as_ref().and_then(|m| m.get("client_id")), Some(&json!("c")));
        let out = validate_credential(
            CP,
            &json!({"type": "S3", "access_key_id": "A", "secret_access_key": "S", "max_upload_parts": 1000,
                    "force_path_style": false, "provider": "Minio", "endpoint": "http://minio:9000"}),
        )
        .ok()
        .map(Value::Object);
        let out = out.unwrap_or_default();
        assert_eq!(
            (&out["max_upload_parts"], &out["force_path_style"], &out["provider"], &out["endpoint"]),
            (&json!(1000), &json!(false), &json!("Minio"), &json!("http://minio:9000"))
        );
    }

    #[test]
    fn discriminator_errors() {
        let tags = "'AZUREBLOB', 'B2', 'BOX', 'DROPBOX', 'FTP', 'GOOGLE_CLOUD_STORAGE', 'GOOGLE_DRIVE', \
                    'GOOGLE_PHOTOS', 'HTTP', 'HUBIC', 'ONEDRIVE', 'PCLOUD', 'S3', 'SFTP', 'STORJ_IX', \
                    'OPENSTACK_SWIFT', 'WEBDAV', 'YANDEX'";
        let table: Vec<(Value, (String, String))> = vec![
            (json!({"user": "u"}), e(&format!("{CP}.type"), "Field required")),
            (
                json!({"type": "MEGA", "user": "u", "pass": "p"}),
                e(
                    &format!("{CP}.type"),
                    &format!("Input tag 'MEGA' found using 'type' does not match any of the expected tags: {tags}"),
                ),
            ),
            (
                json!({"type": 3}),
                e(
                    &format!("{CP}.type"),
                    &format!("Input tag '3' found using 'type' does not match any of the expected tags: {tags}"),
                ),
            ),
            (json!("S3"), e(CP, "Input should be a valid dictionary")),
            (json!(null), e(CP, "Input should be a valid dictionary")),
        ];
        for (input, expected) in table {
            assert_eq!(one(cred_err(input.clone())), expected, "{input}");
        }
    }

    #[test]
    fn schema_errors_on_credentials() {
        let k = |f: &str| format!("{CP}.{f}");
        let long = "x".repeat(1025);
        let table: Vec<(Value, Vec<(String, String)>)> = vec![
            // missing required, in field order
            (
                json!({"type": "S3"}),
                vec![e(&k("access_key_id"), "Field required"), e(&k("secret_access_key"), "Field required")],
            ),
            (
                json!({"type": "OPENSTACK_SWIFT", "user": "u", "key": "k", "auth": "a", "endpoint_type": null}),
                vec![e(&k("auth_version"), "Field required")],
            ),
            // extra keys, after field errors
            (
                json!({"type": "B2", "account": "", "key": "k", "bucket": "b"}),
                vec![
                    e(&k("account"), "String should have at least 1 character"),
                    e(&k("bucket"), "Extra inputs are not permitted"),
                ],
            ),
            (
                json!({"type": "HUBIC", "token": "t", "client_id": ""}),
                vec![e(&k("client_id"), "Extra inputs are not permitted")],
            ),
            // strict types: no coercion
            (
                json!({"type": "FTP", "host": "h", "user": "u", "port": "21"}),
                vec![e(&k("port"), "Input should be a valid integer")],
            ),
            (
                json!({"type": "FTP", "host": "h", "user": "u", "port": 21.0}),
                vec![e(&k("port"), "Input should be a valid integer")],
            ),
            (
                json!({"type": "FTP", "host": "h", "user": "u", "port": true}),
                vec![e(&k("port"), "Input should be a valid integer")],
            ),
            (json!({"type": "FTP", "host": 5, "user": "u"}), vec![e(&k("host"), "Input should be a valid string")]),
            (
                json!({"type": "FTP", "host": "h", "user": "u", "pass": null}),
                vec![e(&k("pass"), "Input should be a valid string")],
            ),
            (
                json!({"type": "S3", "access_key_id": "A", "secret_access_key": "S", "skip_region": 1}),
                vec![e(&k("skip_region"), "Input should be a valid boolean")],
            ),
            (
                json!({"type": "S3", "access_key_id": "A", "secret_access_key": "S", "force_path_style": "true"}),
                vec![e(&k("force_path_style"), "Input should be a valid boolean")],
            ),
            (
                json!({"type": "SFTP", "host": "h", "user": "u", "private_key": "1"}),
                vec![e(&k("private_key"), "Input should be a valid integer")],
            ),
            (
                json!({"type": "SFTP", "host": "h", "user": "u", "pass": 1}),
                vec![e(&k("pass"), "Input should be a valid string")],
            ),
            // 1024-character cap on plain strings
            (
                json!({"type": "B2", "account": long, "key": "k"}),
                vec![e(&k("account"), "String should have at most 1024 characters")],
            ),
            (
                json!({"type": "BOX", "token": "t", "client_id": long}),
                vec![e(&k("client_id"), "String should have at most 1024 characters")],
            ),
            (json!({"type": "BOX", "token": ""}), vec![e(&k("token"), "String should have at least 1 character")]),
            // enums
            (
                json!({"type": "WEBDAV", "url": "http://h", "vendor": "nextcloud", "user": "u", "pass": "p"}),
                vec![e(&k("vendor"), "Input should be 'NEXTCLOUD', 'OWNCLOUD', 'SHAREPOINT' or 'OTHER'")],
            ),
            (
                json!({"type": "ONEDRIVE", "token": "t", "drive_type": null, "drive_id": "d"}),
                vec![e(&k("drive_type"), "Input should be 'PERSONAL', 'BUSINESS' or 'DOCUMENT_LIBRARY'")],
            ),
            (
                json!({"type": "OPENSTACK_SWIFT", "user": "u", "key": "k", "auth": "a", "auth_version": 4, "endpoint_type": "public"}),
                vec![e(&k("auth_version"), "Input should be 0, 1, 2 or 3")],
            ),
            (
                json!({"type": "OPENSTACK_SWIFT", "user": "u", "key": "k", "auth": "a", "auth_version": "3", "endpoint_type": "PUBLIC"}),
                vec![
                    e(&k("auth_version"), "Input should be 0, 1, 2 or 3"),
                    e(&k("endpoint_type"), "Input should be 'public', 'internal' or 'admin'"),
                ],
            ),
            // GCS service-account text
            (
                json!({"type": "GOOGLE_CLOUD_STORAGE", "service_account_credentials": ""}),
                vec![e(&k("service_account_credentials"), "String should have at least 1 character")],
            ),
            (
                json!({"type": "GOOGLE_CLOUD_STORAGE", "service_account_credentials": "[1]"}),
                vec![e(&k("service_account_credentials"), "Input should be a JSON object")],
            ),
        ];
        for (input, expected) in table {
            assert_eq!(cred_err(input.clone()), expected, "{input}");
        }
        let bad_json = cred_err(json!({"type": "GOOGLE_CLOUD_STORAGE", "service_account_credentials": "{"}));
        assert!(bad_json[0].1.starts_with("Invalid JSON: "), "{bad_json:?}");
    }

    #[test]
    fn string_caps_count_characters_and_spare_long_strings() {
        let ok_1024 = "é".repeat(1024);
        assert!(validate_credential(CP, &json!({"type": "B2", "account": ok_1024, "key": "k"})).is_ok());
        let token = "t".repeat(100_000);
        assert!(validate_credential(CP, &json!({"type": "BOX", "token": token})).is_ok());
        let sa = format!(r#"{{"private_key": "{}"}}"#, "k".repeat(4000));
        assert!(
            validate_credential(CP, &json!({"type": "GOOGLE_CLOUD_STORAGE", "service_account_credentials": sa}))
                .is_ok()
        );
        for v in [json!(0), json!(1), json!(2), json!(3), json!(null)] {
            let c = json!({"type": "OPENSTACK_SWIFT", "user": "u", "key": "k", "auth": "a", "auth_version": v,
                           "endpoint_type": "admin"});
            assert!(validate_credential(CP, &c).is_ok(), "{c}");
        }
    }

    #[test]
    fn azure_account_regex() {
        let regex = regex::Regex::new(r"(?i)^[a-z0-9\-.]+$").map_err(|e| e.to_string());
        let key = format!("{CP}.account");
        let msg = "Assertion failed, Account Name field can only contain alphanumeric characters, - and .";
        let table: &[(&str, bool)] = &[
            ("myaccount", true),
            ("MyAccount01", true),
            ("my-account.v2", true),
            ("a", true),
            ("-.", true),
            ("my_account", false),
            ("my account", false),
            ("acct\n", false),
            ("ακκ", false),
            ("acct/x", false),
            ("https://acct.blob.core.windows.net", false),
        ];
        for &(account, ok) in table {
            assert_eq!(regex.as_ref().map(|r| r.is_match(account)), Ok(ok), "regex on {account:?}");
            let r = validate_credential(CP, &json!({"type": "AZUREBLOB", "account": account, "key": "k"}));
            match r {
                Ok(_) => assert!(ok, "{account:?} accepted"),
                Err(errors) => {
                    assert!(!ok, "{account:?} refused: {errors:?}");
                    assert_eq!(one(errors), e(&key, msg));
                }
            }
        }
        assert_eq!(
            one(cred_err(json!({"type": "AZUREBLOB", "account": "", "key": "k"}))),
            e(&key, "String should have at least 1 character")
        );
    }

    #[test]
    fn url_fields() {
        let rel = "Input should be a valid URL, relative URL without a base";
        let scheme = "URL scheme should be 'http' or 'https'";
        // (type, field, value, expected error)
        let azure = |v: Value| json!({"type": "AZUREBLOB", "account": "a", "key": "k", "endpoint": v});
        let s3 = |v: Value| json!({"type": "S3", "access_key_id": "A", "secret_access_key": "S", "endpoint": v});
        let storj =
            |v: Value| json!({"type": "STORJ_IX", "access_key_id": "A", "secret_access_key": "S", "endpoint": v});
        let http = |v: Value| json!({"type": "HTTP", "url": v});
        let long = format!("https://h/{}", "x".repeat(2100));
        let table: Vec<(Value, &str, Option<String>)> = vec![
            (azure(json!("")), "endpoint", None),
            (azure(json!("https://acct.blob.core.windows.net/")), "endpoint", None),
            (azure(json!("ftp://h")), "endpoint", Some(format!("Input should be '' or {scheme}"))),
            (azure(json!("acct.blob")), "endpoint", Some(format!("Input should be '' or {rel}"))),
            (azure(json!(null)), "endpoint", Some("Input should be '' or URL input should be a string or URL".into())),
            (s3(json!("")), "endpoint", None),
            (s3(json!("http://localhost:9000")), "endpoint", None),
            (s3(json!("https://s3.fr-par.scw.cloud/")), "endpoint", None),
            (s3(json!("HTTPS://[::1]:9000/")), "endpoint", None),
            (s3(json!("localhost:9000")), "endpoint", Some(format!("Input should be '' or {scheme}"))),
            (
                s3(json!("http://")),
                "endpoint",
                Some("Input should be '' or Input should be a valid URL, empty host".into()),
            ),
            (
                s3(json!("http://h:99999")),
                "endpoint",
                Some("Input should be '' or Input should be a valid URL, invalid port number".into()),
            ),
            (
                s3(json!(" http://h")),
                "endpoint",
                Some(
                    "Input should be '' or Input should be a valid URL, control characters and surrounding \
                     whitespace are not allowed"
                        .into(),
                ),
            ),
            (storj(json!("https://gateway.eu1.storjshare.io")), "endpoint", None),
            (
                storj(json!("http://gateway.storjshare.io/")),
                "endpoint",
                Some("Value error, URL scheme must be https".into()),
            ),
            (storj(json!("")), "endpoint", Some("Input should be a valid URL, input is empty".into())),
            (storj(json!(5)), "endpoint", Some("URL input should be a string or URL".into())),
            (http(json!("http://user:pw@h:8080/a b?x#y")), "url", None),
            (http(json!("h/x")), "url", Some(rel.into())),
            (
                http(json!("http://bad host/")),
                "url",
                Some("Input should be a valid URL, invalid domain character".into()),
            ),
            (http(json!("http://[zz]/")), "url", Some("Input should be a valid URL, invalid IPv6 address".into())),
            (
                http(json!("http://h\n.example/")),
                "url",
                Some(
                    "Input should be a valid URL, control characters and surrounding whitespace are not allowed".into(),
                ),
            ),
            (http(json!(long)), "url", Some("URL should have at most 2083 characters".into())),
        ];
        for (input, field, expected) in table {
            let got = validate_credential(CP, &input).err().map(one);
            assert_eq!(got, expected.map(|m| (format!("{CP}.{field}"), m)), "{input}");
        }
    }

    fn attrs_err(t: &str, attrs: Value) -> Errors {
        match validate_task_attributes(S, p(t), &attrs) {
            Ok(m) => panic!("{t}: accepted {attrs}: {m:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn every_provider_accepts_minimal_attributes_with_defaults() {
        let table: &[(&str, Value, Value)] = &[
            (
                "AZUREBLOB",
                json!({"bucket": "c", "folder": ""}),
                json!({"bucket": "c", "folder": "", "fast_list": false}),
            ),
            (
                "B2",
                json!({"bucket": "b", "folder": "f"}),
                json!({"bucket": "b", "folder": "f", "fast_list": false, "chunk_size": 96}),
            ),
            ("BOX", json!({"folder": "f"}), json!({"folder": "f"})),
            ("DROPBOX", json!({"folder": "f"}), json!({"folder": "f", "chunk_size": 48})),
            ("FTP", json!({"folder": "/f"}), json!({"folder": "/f"})),
            (
                "GOOGLE_CLOUD_STORAGE",
                json!({"bucket": "b", "folder": ""}),
                json!({"bucket": "b", "folder": "", "fast_list": false, "bucket_policy_only": false}),
            ),
            (
                "GOOGLE_DRIVE",
                json!({"folder": "f"}),
                json!({"folder": "f", "fast_list": false, "acknowledge_abuse": false}),
            ),
            ("GOOGLE_PHOTOS", json!({"folder": "album/x"}), json!({"folder": "album/x"})),
            ("HTTP", json!({"folder": ""}), json!({"folder": ""})),
            ("HUBIC", json!({"bucket": "c", "folder": ""}), json!({"bucket": "c", "folder": "", "fast_list": false})),
            ("ONEDRIVE", json!({"folder": ""}), json!({"folder": ""})),
            ("PCLOUD", json!({"folder": ""}), json!({"folder": ""})),
            (
                "S3",
                json!({"bucket": "b", "folder": ""}),
                json!({"bucket": "b", "folder": "", "fast_list": false, "region": "", "encryption": null,
                       "storage_class": ""}),
            ),
            ("SFTP", json!({"folder": "data"}), json!({"folder": "data"})),
            (
                "STORJ_IX",
                json!({"bucket": "b", "folder": ""}),
                json!({"bucket": "b", "folder": "", "fast_list": false}),
            ),
            (
                "OPENSTACK_SWIFT",
                json!({"bucket": "c", "folder": ""}),
                json!({"bucket": "c", "folder": "", "fast_list": false}),
            ),
            ("WEBDAV", json!({"folder": ""}), json!({"folder": ""})),
            ("YANDEX", json!({"folder": ""}), json!({"folder": "", "fast_list": false})),
        ];
        assert_eq!(table.len(), 18);
        for (t, input, expected) in table {
            assert_eq!(validate_task_attributes(S, p(t), input).map(Value::Object), Ok(expected.clone()), "{t}");
        }
        let full = json!({"bucket": "b", "folder": "x", "fast_list": true, "region": "eu-west-1",
                          "encryption": "AES256", "storage_class": "GLACIER_IR"});
        assert_eq!(validate_task_attributes(S, p("S3"), &full).map(Value::Object), Ok(full.clone()));
    }

    #[test]
    fn v3_attribute_schema() {
        let k = |f: &str| format!("{S}.attributes.{f}");
        let table: Vec<(&str, Value, Errors)> = vec![
            ("S3", json!({}), vec![e(&k("bucket"), "Field required"), e(&k("folder"), "Field required")]),
            (
                "S3",
                json!({"bucket": "", "folder": ""}),
                vec![e(&k("bucket"), "String should have at least 1 character")],
            ),
            ("FTP", json!({"folder": "", "bucket": "b"}), vec![e(&k("bucket"), "Extra inputs are not permitted")]),
            (
                "FTP",
                json!({"folder": "", "fast_list": true}),
                vec![e(&k("fast_list"), "Extra inputs are not permitted")],
            ),
            (
                "S3",
                json!({"bucket": "b", "folder": "", "chunk_size": 5}),
                vec![e(&k("chunk_size"), "Extra inputs are not permitted")],
            ),
            (
                "B2",
                json!({"bucket": "b", "folder": "", "b2_chunk_size": 5}),
                vec![e(&k("b2_chunk_size"), "Extra inputs are not permitted")],
            ),
            (
                "B2",
                json!({"bucket": "b", "folder": "", "chunk_size": "96"}),
                vec![e(&k("chunk_size"), "Input should be a valid integer")],
            ),
            (
                "DROPBOX",
                json!({"folder": "", "chunk_size": 48.0}),
                vec![e(&k("chunk_size"), "Input should be a valid integer")],
            ),
            (
                "S3",
                json!({"bucket": "b", "folder": 1, "fast_list": "yes"}),
                vec![
                    e(&k("folder"), "Input should be a valid string"),
                    e(&k("fast_list"), "Input should be a valid boolean"),
                ],
            ),
            (
                "S3",
                json!({"bucket": "b", "folder": "", "storage_class": "COLD"}),
                vec![e(
                    &k("storage_class"),
                    "Input should be '', 'STANDARD', 'REDUCED_REDUNDANCY', 'STANDARD_IA', 'ONEZONE_IA', \
                 'INTELLIGENT_TIERING', 'GLACIER', 'GLACIER_IR' or 'DEEP_ARCHIVE'",
                )],
            ),
            (
                "S3",
                json!({"bucket": "b", "folder": "", "encryption": 1}),
                vec![e(&k("encryption"), "Input should be a valid string")],
            ),
            (
                "GOOGLE_CLOUD_STORAGE",
                json!({"bucket": "b", "folder": "", "bucket_policy_only": null}),
                vec![e(&k("bucket_policy_only"), "Input should be a valid boolean")],
            ),
            (
                "GOOGLE_DRIVE",
                json!({"folder": "", "acknowledge_abuse": 0}),
                vec![e(&k("acknowledge_abuse"), "Input should be a valid boolean")],
            ),
            (
                "WEBDAV",
                json!({"folder": "x".repeat(1025)}),
                vec![e(&k("folder"), "String should have at most 1024 characters")],
            ),
            // schema errors come alone: V4 is not examined until the schema passes
            ("B2", json!({"folder": "", "chunk_size": 1}), vec![e(&k("bucket"), "Field required")]),
        ];
        for (t, input, expected) in table {
            assert_eq!(attrs_err(t, input.clone()), expected, "{t} {input}");
        }
        assert_eq!(
            one(attrs_err("S3", json!(["b"]))),
            e(&format!("{S}.attributes"), "Input should be a valid dictionary")
        );
    }

    #[test]
    fn v4_to_v7_basic_checks() {
        let chunk = format!("{S}.attributes.chunk_size");
        let enc = format!("{S}.attributes.encryption");
        let ge5 = "Must be greater than or equal to 5";
        let lt150 = "Must be less than 150";
        let table: Vec<(&str, Value, Option<Pair>)> = vec![
            ("B2", json!({"bucket": "b", "folder": "", "chunk_size": 4}), Some(e(&chunk, ge5))),
            ("B2", json!({"bucket": "b", "folder": "", "chunk_size": -1}), Some(e(&chunk, ge5))),
            ("B2", json!({"bucket": "b", "folder": "", "chunk_size": 5}), None),
            ("B2", json!({"bucket": "b", "folder": "", "chunk_size": 5000}), None),
            ("DROPBOX", json!({"folder": "", "chunk_size": 4}), Some(e(&chunk, ge5))),
            ("DROPBOX", json!({"folder": "", "chunk_size": 5}), None),
            ("DROPBOX", json!({"folder": "", "chunk_size": 149}), None),
            ("DROPBOX", json!({"folder": "", "chunk_size": 150}), Some(e(&chunk, lt150))),
            ("DROPBOX", json!({"folder": "", "chunk_size": u64::MAX}), Some(e(&chunk, lt150))),
            ("S3", json!({"bucket": "b", "folder": "", "encryption": null}), None),
            ("S3", json!({"bucket": "b", "folder": "", "encryption": ""}), None),
            ("S3", json!({"bucket": "b", "folder": "", "encryption": "AES256"}), None),
            (
                "S3",
                json!({"bucket": "b", "folder": "", "encryption": "aws:kms"}),
                Some(e(&enc, "Encryption should be null or \"AES256\"")),
            ),
            (
                "S3",
                json!({"bucket": "b", "folder": "", "encryption": "aes256"}),
                Some(e(&enc, "Encryption should be null or \"AES256\"")),
            ),
        ];
        for (t, input, expected) in table {
            let got = validate_task_attributes(S, p(t), &input).err().map(one);
            assert_eq!(got, expected, "{t} {input}");
        }
        // The key is never the bare TrueNAS one (F12), and the prefix follows the schema.
        let got = validate_task_attributes(
            "cloud_sync_update",
            p("B2"),
            &json!({"bucket": "b", "folder": "", "chunk_size": 1}),
        );
        assert_eq!(got.err().map(one), Some(e("cloud_sync_update.attributes.chunk_size", ge5)));
    }

    #[test]
    fn v9_v10_google_photos_folder_guard() {
        let key = format!("{S}.attributes.folder");
        let root = "Pulling from the root directory is not allowed. Please, select a specific directory.";
        let media = "Pulling from the media directory is not allowed. Please, select a specific directory.";
        let by_day = "Pulling from the media/by-day directory is not allowed. Please, select a specific directory.";
        let table: &[(&str, Option<&str>)] = &[
            ("", Some(root)),
            ("/", Some(root)),
            ("///", Some(root)),
            ("media", Some(media)),
            ("/media/", Some(media)),
            ("media/.", Some(media)),
            ("album/../media", Some(media)),
            ("media/by-day", Some(by_day)),
            ("/media//by-day/", Some(by_day)),
            ("media/./by-day", Some(by_day)),
            ("media/all", None),
            ("media/by-day/2020", None),
            ("media/by-month", None),
            ("album/Holidays", None),
            ("upload", None),
            (".", None),
        ];
        for &(folder, expected) in table {
            let got = validate_task_attributes(S, p("GOOGLE_PHOTOS"), &json!({"folder": folder})).err().map(one);
            assert_eq!(got, expected.map(|m| e(&key, m)), "{folder:?}");
        }
        // Only Google Photos has the guard.
        assert!(validate_task_attributes(S, p("GOOGLE_DRIVE"), &json!({"folder": "media"})).is_ok());
    }

    #[test]
    fn normpath_matches_python() {
        for (input, expected) in
            [("a//b", "a/b"), ("a/./b", "a/b"), ("a/b/..", "a"), ("../a", "../a"), ("a/../..", ".."), (".", ".")]
        {
            assert_eq!(normpath(input), expected, "{input}");
        }
    }

    #[test]
    fn remote_paths() {
        let table: &[(&str, Value, &str)] = &[
            ("S3", json!({"bucket": "b", "folder": ""}), "b/"),
            ("S3", json!({"bucket": "b", "folder": "/"}), "b/"),
            ("S3", json!({"bucket": "b", "folder": "dir/sub/"}), "b/dir/sub"),
            ("S3", json!({"bucket": "b", "folder": "//dir//"}), "b/dir"),
            ("OPENSTACK_SWIFT", json!({"bucket": "c", "folder": "/x"}), "c/x"),
            ("STORJ_IX", json!({"bucket": "b", "folder": "x"}), "b/x"),
            // test_ftp_subfolder: the leading slash decides absolute vs login-relative
            ("FTP", json!({"folder": "/data"}), "/data"),
            ("FTP", json!({"folder": "data"}), "data"),
            ("FTP", json!({"folder": "data/"}), "data"),
            ("FTP", json!({"folder": ""}), "/"),
            ("SFTP", json!({"folder": "/home/u/data/"}), "/home/u/data"),
            ("SFTP", json!({"folder": "data"}), "data"),
            ("WEBDAV", json!({"folder": "//x"}), "//x"),
            ("GOOGLE_DRIVE", json!({"folder": "/"}), "/"),
            ("DROPBOX", json!({"folder": "Backups"}), "Backups"),
        ];
        for (t, attrs, expected) in table {
            assert_eq!(remote_path(p(t), &obj(attrs.clone())), *expected, "{t} {attrs}");
        }
    }

    #[test]
    fn providers_listing_shape_order_and_chunk_size() {
        let listing = providers_listing();
        let items = listing.as_array().cloned().unwrap_or_default();
        assert_eq!(items.len(), 18);
        let titles: Vec<String> =
            items.iter().map(|i| i["title"].as_str().unwrap_or_default().to_lowercase()).collect();
        let mut sorted = titles.clone();
        sorted.sort();
        assert_eq!(titles, sorted);
        assert_eq!(titles.first().map(String::as_str), Some("amazon s3"));
        assert_eq!(titles.iter().position(|t| t == "pcloud"), Some(13));
        for item in &items {
            let keys: Vec<&str> = item.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
            let mut keys = keys;
            keys.sort_unstable();
            // TrueNAS's keys, and the credential fields' schemas (issue 17: the listing
            // carries the schemas, so a client can build its forms from it).
            assert_eq!(
                keys,
                ["bucket_title", "buckets", "credentials_oauth", "credentials_schema", "name", "task_schema", "title"]
            );
        }
        let find = |name: &str| items.iter().find(|i| i["name"] == name).cloned().unwrap_or_default();
        let props = |name: &str| -> Vec<String> {
            find(name)["task_schema"]
                .as_array()
                .map(|a| a.iter().map(|i| i["property"].as_str().unwrap_or_default().to_string()).collect())
                .unwrap_or_default()
        };
        // F10: the API name, never b2_chunk_size / dropbox_chunk_size
        assert_eq!(props("B2"), ["bucket", "folder", "fast_list", "chunk_size"]);
        assert_eq!(props("DROPBOX"), ["folder", "chunk_size"]);
        assert_eq!(props("S3"), ["bucket", "folder", "fast_list", "region", "encryption", "storage_class"]);
        assert_eq!(props("GOOGLE_CLOUD_STORAGE"), ["bucket", "folder", "fast_list", "bucket_policy_only"]);
        assert_eq!(props("GOOGLE_DRIVE"), ["folder", "fast_list", "acknowledge_abuse"]);
        assert_eq!(props("FTP"), ["folder"]);
        assert!(!listing.to_string().contains("b2_chunk_size") && !listing.to_string().contains("dropbox_chunk_size"));
        let oauth = |name: &str| find(name)["credentials_oauth"].clone();
        for (name, url) in [
            ("BOX", json!("https://www.truenas.com/oauth/box")),
            ("DROPBOX", json!("https://www.truenas.com/oauth/dropbox")),
            ("GOOGLE_DRIVE", json!("https://www.truenas.com/oauth/google_drive")),
            ("ONEDRIVE", json!("https://www.truenas.com/oauth/onedrive")),
            ("PCLOUD", json!("https://www.truenas.com/oauth/pcloud2")),
            ("YANDEX", json!("https://www.truenas.com/oauth/yandex")),
            ("GOOGLE_PHOTOS", Value::Null),
            ("HUBIC", Value::Null),
            ("S3", Value::Null),
        ] {
            assert_eq!(oauth(name), url, "{name}");
        }
        assert_eq!(find("AZUREBLOB")["bucket_title"], "Container");
        assert_eq!(find("S3")["bucket_title"], "Bucket");
        assert_eq!(find("HTTP")["buckets"], false);
        // The registry itself is in listing order.
        let names: Vec<&str> = all().iter().map(|p| p.type_name).collect();
        let listed: Vec<&str> = items.iter().map(|i| i["name"].as_str().unwrap_or_default()).collect();
        assert_eq!(names, listed);
    }

    #[test]
    fn secret_fields() {
        let table: &[(&str, &str, bool)] = &[
            ("S3", "access_key_id", true),
            ("S3", "secret_access_key", true),
            ("S3", "endpoint", false),
            ("S3", "region", false),
            ("S3", "provider", false),
            ("S3", "type", false),
            ("STORJ_IX", "secret_access_key", true),
            ("STORJ_IX", "endpoint", false),
            ("AZUREBLOB", "account", true),
            ("AZUREBLOB", "key", true),
            ("AZUREBLOB", "endpoint", false),
            ("B2", "account", true),
            ("B2", "key", true),
            ("BOX", "token", true),
            ("BOX", "client_id", true),
            ("DROPBOX", "client_secret", true),
            ("FTP", "pass", true),
            ("FTP", "host", false),
            ("FTP", "user", false),
            ("FTP", "port", false),
            ("SFTP", "pass", true),
            ("SFTP", "private_key", false),
            ("GOOGLE_CLOUD_STORAGE", "service_account_credentials", true),
            ("GOOGLE_DRIVE", "team_drive", true),
            ("HTTP", "url", false),
            ("HUBIC", "token", true),
            ("ONEDRIVE", "drive_id", true),
            ("ONEDRIVE", "drive_type", false),
            ("PCLOUD", "hostname", false),
            ("OPENSTACK_SWIFT", "user", true),
            ("OPENSTACK_SWIFT", "application_credential_secret", true),
            ("OPENSTACK_SWIFT", "auth_version", false),
            ("WEBDAV", "pass", true),
            ("WEBDAV", "user", false),
            ("WEBDAV", "vendor", false),
            ("YANDEX", "token", true),
            // fail closed
            ("S3", "no_such_field", true),
            ("NOPE", "endpoint", true),
        ];
        for &(t, f, secret) in table {
            assert_eq!(is_secret(t, f), secret, "{t}.{f}");
        }
        // Every field named token, key, pass or secret is secret, whatever the provider.
        for spec in all() {
            for f in spec.credential_fields {
                if ["token", "key", "pass"].contains(&f.name) || f.name.contains("secret") {
                    assert!(f.secret, "{}.{}", spec.type_name, f.name);
                }
            }
        }
        let redacted = redact(&obj(json!({"type": "S3", "access_key_id": "A", "endpoint": "http://h"})));
        assert_eq!(Value::Object(redacted), json!({"type": "S3", "access_key_id": "********", "endpoint": "http://h"}));
    }

    /// A credential for `spec` with every field set: secrets to `marker`, others to plausible values.
    fn credential_with_marked_secrets(spec: &ProviderSpec, marker: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("type".into(), json!(spec.type_name));
        for f in spec.credential_fields {
            let v = if f.secret {
                match f.ty {
                    Int | IntOrNull => json!(4242),
                    _ => json!(marker),
                }
            } else {
                match (f.ty, f.check) {
                    (_, Check::HttpUrl | Check::EmptyOrHttpUrl | Check::HttpsUrl) => json!("https://example.com/"),
                    (Enum(o), _) | (EnumOrNull(o), _) => json!(o[0]),
                    (Int | IntOrNull | IntEnumOrNull(_), _) => json!(1),
                    (Bool, _) => json!(true),
                    _ => json!("plain"),
                }
            };
            m.insert(f.name.into(), v);
        }
        m
    }

    #[test]
    fn script_env_never_contains_a_secret() {
        let marker = "SEKRIT-MARKER-7f3a";
        for spec in all() {
            let credential = credential_with_marked_secrets(spec, marker);
            let mut attrs = Map::new();
            for f in task_schema(spec) {
                attrs.insert(f.name.into(), f.default.map_or(json!("folder"), |d| d()));
            }
            attrs.insert("folder".into(), json!("dir"));
            let env = script_env(spec.type_name, &credential, &attrs);
            for (k, v) in &env {
                assert!(k.starts_with("CLOUD_SYNC_"), "{k}");
                assert!(!v.contains(marker) && !v.contains("4242"), "{}: {k}={v}", spec.type_name);
            }
            assert_eq!(env[0], ("CLOUD_SYNC_TYPE".to_string(), spec.type_name.to_string()));
        }
        // Every exported credential field is declared non-secret where it exists.
        for (_, field, types) in CREDENTIAL_ENV {
            for t in *types {
                assert!(p(t).credential_fields.iter().any(|f| f.name == *field), "{t}.{field}");
                assert!(!is_secret(t, field), "{t}.{field}");
            }
        }
        // A password written into a URL is not exported either.
        let env = script_env(
            "WEBDAV",
            &obj(json!({"type": "WEBDAV", "url": "https://me:SEKRIT@dav.example/x?y", "vendor": "OTHER",
                        "user": "me", "pass": "SEKRIT"})),
            &obj(json!({"folder": "f"})),
        );
        assert!(env.iter().all(|(_, v)| !v.contains("SEKRIT")), "{env:?}");
        assert!(env.contains(&("CLOUD_SYNC_URL".into(), "https://me@dav.example/x?y".into())));
    }

    fn env_of(t: &str, credential: Value, attrs: Value) -> Vec<(String, String)> {
        script_env(t, &obj(credential), &obj(attrs))
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (format!("CLOUD_SYNC_{k}"), v.to_string())).collect()
    }

    #[test]
    fn script_env_follows_the_table() {
        let s3 = json!({"type": "S3", "access_key_id": "A", "secret_access_key": "S", "endpoint": "https://s3.example",
                        "region": "us-west-2", "skip_region": false});
        let table: Vec<(&str, Value, Value, Vec<Pair>)> = vec![
            (
                "S3",
                s3.clone(),
                json!({"bucket": "b", "folder": "f", "fast_list": true, "region": "", "encryption": null, "storage_class": ""}),
                pairs(&[
                    ("TYPE", "S3"),
                    ("BUCKET", "b"),
                    ("FOLDER", "f"),
                    ("FAST_LIST", "1"),
                    ("STORAGE_CLASS", ""),
                    ("SERVER_SIDE_ENCRYPTION", ""),
                    ("REGION", "us-west-2"),
                    ("ENDPOINT", "https://s3.example"),
                ]),
            ),
            (
                "S3",
                s3,
                json!({"bucket": "b", "folder": "", "fast_list": false, "region": "eu-central-1", "encryption": "AES256",
                       "storage_class": "GLACIER"}),
                pairs(&[
                    ("TYPE", "S3"),
                    ("BUCKET", "b"),
                    ("FOLDER", ""),
                    ("FAST_LIST", "0"),
                    ("STORAGE_CLASS", "GLACIER"),
                    ("SERVER_SIDE_ENCRYPTION", "AES256"),
                    ("REGION", "eu-central-1"),
                    ("ENDPOINT", "https://s3.example"),
                ]),
            ),
            (
                "B2",
                json!({"type": "B2", "account": "a", "key": "k"}),
                json!({"bucket": "b", "folder": "x"}),
                pairs(&[("TYPE", "B2"), ("BUCKET", "b"), ("FOLDER", "x"), ("FAST_LIST", "0"), ("CHUNK_SIZE", "96")]),
            ),
            (
                "DROPBOX",
                json!({"type": "DROPBOX", "token": "t"}),
                json!({"folder": "x", "chunk_size": 100}),
                pairs(&[("TYPE", "DROPBOX"), ("FOLDER", "x"), ("CHUNK_SIZE", "100")]),
            ),
            (
                "FTP",
                json!({"type": "FTP", "host": "ftp.example", "port": 2121, "user": "anonymous", "pass": "pw"}),
                json!({"folder": "/pub"}),
                pairs(&[
                    ("TYPE", "FTP"),
                    ("FOLDER", "/pub"),
                    ("HOST", "ftp.example"),
                    ("PORT", "2121"),
                    ("USER", "anonymous"),
                ]),
            ),
            (
                "SFTP",
                json!({"type": "SFTP", "host": "h", "port": 22, "user": "u", "pass": null, "private_key": 3}),
                json!({"folder": "data"}),
                pairs(&[("TYPE", "SFTP"), ("FOLDER", "data"), ("HOST", "h"), ("PORT", "22"), ("USER", "u")]),
            ),
            (
                "WEBDAV",
                json!({"type": "WEBDAV", "url": "https://dav/", "vendor": "OTHER", "user": "u", "pass": "p"}),
                json!({"folder": "f"}),
                pairs(&[("TYPE", "WEBDAV"), ("FOLDER", "f"), ("USER", "u"), ("URL", "https://dav/")]),
            ),
            (
                "HTTP",
                json!({"type": "HTTP", "url": "http://mirror/"}),
                json!({"folder": "iso"}),
                pairs(&[("TYPE", "HTTP"), ("FOLDER", "iso"), ("URL", "http://mirror/")]),
            ),
            (
                "STORJ_IX",
                json!({"type": "STORJ_IX", "access_key_id": "A", "secret_access_key": "S",
                       "endpoint": "https://gateway.storjshare.io/"}),
                json!({"bucket": "b", "folder": "", "fast_list": true}),
                pairs(&[
                    ("TYPE", "STORJ_IX"),
                    ("BUCKET", "b"),
                    ("FOLDER", ""),
                    ("FAST_LIST", "1"),
                    ("ENDPOINT", "https://gateway.storjshare.io/"),
                ]),
            ),
            (
                "AZUREBLOB",
                json!({"type": "AZUREBLOB", "account": "a", "key": "k", "endpoint": ""}),
                json!({"bucket": "c", "folder": ""}),
                pairs(&[("TYPE", "AZUREBLOB"), ("BUCKET", "c"), ("FOLDER", ""), ("FAST_LIST", "0"), ("ENDPOINT", "")]),
            ),
            (
                "OPENSTACK_SWIFT",
                json!({"type": "OPENSTACK_SWIFT", "user": "u", "key": "k", "auth": "a", "region": "RegionOne"}),
                json!({"bucket": "c", "folder": "x", "fast_list": false}),
                pairs(&[("TYPE", "OPENSTACK_SWIFT"), ("BUCKET", "c"), ("FOLDER", "x"), ("FAST_LIST", "0")]),
            ),
            ("NOPE", json!({}), json!({"folder": "x"}), pairs(&[("TYPE", "NOPE")])),
        ];
        for (t, credential, attrs, expected) in table {
            assert_eq!(env_of(t, credential, attrs.clone()), expected, "{t} {attrs}");
        }
    }

    #[test]
    fn rclone_value_mapping_for_every_operation() {
        for (api, rclone) in
            [("NEXTCLOUD", "nextcloud"), ("OWNCLOUD", "owncloud"), ("SHAREPOINT", "sharepoint"), ("OTHER", "other")]
        {
            assert_eq!(rclone_webdav_vendor(api), rclone);
        }
        assert_eq!(rclone_onedrive_drive_type("PERSONAL"), Some("personal"));
        assert_eq!(rclone_onedrive_drive_type("BUSINESS"), Some("business"));
        assert_eq!(rclone_onedrive_drive_type("DOCUMENT_LIBRARY"), Some("documentLibrary"));
        assert_eq!(rclone_onedrive_drive_type("personal"), None);
        // Every vendor / drive type the schema accepts has a mapping.
        for t in ONEDRIVE_DRIVE_TYPES {
            assert!(rclone_onedrive_drive_type(t).is_some());
        }
        for v in crate::remote::webdav::provider::VENDORS {
            assert!(crate::remote::webdav::Vendor::parse(&rclone_webdav_vendor(v)).is_ok());
        }
    }
}
