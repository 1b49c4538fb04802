//! The data language of credential schemas and task attributes (TrueNAS's pydantic
//! models, as data): field types, checks, defaults. Each provider declares its fields next
//! to its code (`remote/<p>/provider.rs`); the task layer validates any of them
//! (`task::providers`).

use serde_json::{Value, json};

/// Validation errors: (full key, message), e.g. ("cloud_sync_create.attributes.chunk_size", "Must be greater than or equal to 5").
pub type Errors = Vec<(String, String)>;

/// The value types of the pydantic schemas, strict (no coercion between them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// A string capped at 1024 characters (TrueNAS `str_max_length`).
    Str,
    /// An uncapped string (TrueNAS `LongString`: tokens).
    LongStr,
    Int,
    Bool,
    StrOrNull,
    IntOrNull,
    /// Non-empty, uncapped text that must parse as a JSON object (the GCS service-account key file).
    Json,
    Enum(&'static [&'static str]),
    EnumOrNull(&'static [&'static str]),
    /// Integer literals or null (Swift `auth_version`).
    IntEnumOrNull(&'static [i64]),
}

/// A value check beyond the type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    None,
    /// At least one character (TrueNAS `NonEmptyString`).
    NonEmpty,
    /// Non-empty and only ASCII letters, digits, `-` and `.` (the Azure account-name rule).
    AzureAccount,
    /// An http or https URL (pydantic `HttpUrl`).
    HttpUrl,
    /// `""` or an http(s) URL (`Literal[""] | HttpUrl`).
    EmptyOrHttpUrl,
    /// An https URL (TrueNAS `HttpsOnlyURL`).
    HttpsUrl,
}

/// One field of a credential schema or of the task attributes.
#[derive(Clone, Copy, Debug)]
pub struct FieldSpec {
    pub name: &'static str,
    pub ty: FieldType,
    /// Required fields have no default; a missing one is `Field required`.
    pub required: bool,
    /// Redacted for read-only callers and never exported to scripts (see the module doc).
    pub secret: bool,
    pub default: Option<fn() -> Value>,
    pub check: Check,
}

impl FieldSpec {
    pub const fn new(name: &'static str, ty: FieldType) -> FieldSpec {
        FieldSpec { name, ty, required: true, secret: false, default: None, check: Check::None }
    }

    pub const fn sec(self) -> FieldSpec {
        FieldSpec { secret: true, ..self }
    }

    pub const fn or(self, default: fn() -> Value) -> FieldSpec {
        FieldSpec { required: false, default: Some(default), ..self }
    }

    /// Optional and left out when absent (cloudsync's own fields beside TrueNAS's, so that
    /// a credential without them stays exactly what TrueNAS stores and exports).
    pub const fn opt(self) -> FieldSpec {
        FieldSpec { required: false, default: None, ..self }
    }

    pub const fn chk(self, check: Check) -> FieldSpec {
        FieldSpec { check, ..self }
    }
}

pub const MAX_STR: usize = 1024;
/// pydantic's `HttpUrl` length limit.
pub const MAX_URL: usize = 2083;

pub fn d_empty() -> Value {
    Value::String(String::new())
}
pub fn d_null() -> Value {
    Value::Null
}
pub fn d_false() -> Value {
    Value::Bool(false)
}
pub fn d_true() -> Value {
    Value::Bool(true)
}
pub fn d_port_ftp() -> Value {
    json!(21)
}
pub fn d_port_sftp() -> Value {
    json!(22)
}
pub fn d_max_upload_parts() -> Value {
    json!(10000)
}
pub fn d_s3_provider() -> Value {
    json!("Other")
}
pub fn d_storj_endpoint() -> Value {
    json!("https://gateway.storjshare.io/")
}
pub fn d_b2_chunk() -> Value {
    json!(96)
}
pub fn d_dropbox_chunk() -> Value {
    json!(48)
}

// Task attributes every bucket provider shares.
pub const BUCKET: FieldSpec = FieldSpec::new("bucket", FieldType::Str).chk(Check::NonEmpty);
pub const FOLDER: FieldSpec = FieldSpec::new("folder", FieldType::Str);
