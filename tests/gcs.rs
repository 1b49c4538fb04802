//! Google Cloud Storage against fake-gcs-server and the fake token endpoint: the
//! service-account JWT exchange (checked by signature), token reuse and renewal on a 401,
//! a wrong key, resumable uploads that resume after a failure, and the registry's build
//! through `STORAGE_EMULATOR_HOST`.

mod common;

use cloudsync::Kind;
use cloudsync::path::RelPath;
use cloudsync::remote::gcs::GcsRemote;
use cloudsync::remote::{PutInfo, Remote};
use common::faults::{Fault, FaultProxy};
use common::servers::{gcs, unique};
use common::{Bytes, T1};
use std::io::Read;

fn rel(p: &str) -> RelPath {
    RelPath::from_str_checked(p).unwrap()
}

fn put(r: &dyn Remote, path: &str, data: &[u8]) -> cloudsync::Result<cloudsync::remote::Entry> {
    let info = PutInfo { size: data.len() as u64, mtime: Some(T1), ..PutInfo::default() };
    r.put(&rel(path), &Bytes(data.to_vec(), T1), &info)
}

#[test]
fn tokens_are_signed_reused_and_renewed_on_401() {
    let g = gcs();
    let bucket = unique("tok-");
    g.remote(&bucket, "");
    let proxy = FaultProxy::start(&g.endpoint);
    let mut o = g.options(&bucket, "");
    o.endpoint = proxy.endpoint.clone();
    let r = GcsRemote::new(o).unwrap();
    let before = g.tokens_issued();
    for i in 0..5 {
        put(&r, &format!("f{i}"), b"x").unwrap();
    }
    assert_eq!(g.tokens_issued() - before, 1, "one token for many requests");
    proxy.add(
        1,
        |s| s.method == "GET",
        Fault::Answer {
            status: 401,
            headers: vec![("content-type".into(), "application/json".into())],
            body: r#"{"error":{"code":401,"message":"Invalid Credentials","errors":[{"reason":"authError"}]}}"#.into(),
        },
    );
    assert_eq!(r.list_dir(&RelPath::root(), &mut |_| {}).unwrap().len(), 5);
    assert_eq!(g.tokens_issued() - before, 2, "a refused token is renewed once");
}

#[test]
fn a_wrong_key_fails_with_a_sentence() {
    let g = gcs();
    let mut key = g.key_file();
    // Another valid RSA key: the token endpoint rejects its signature.
    let other = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        .output()
        .expect("openssl");
    key["private_key"] = serde_json::Value::String(String::from_utf8(other.stdout).unwrap());
    let mut o = g.options(&unique("bad-"), "");
    o.account = cloudsync::remote::gcs::auth::ServiceAccount::parse(&key).unwrap();
    let r = GcsRemote::new(o).unwrap();
    let e = r.root_state().unwrap_err();
    assert_eq!(e.kind(), Kind::Permission, "{e}");
    assert!(e.to_string().contains("Google refused the service account key"), "{e}");
    assert!(!e.to_string().contains("PRIVATE KEY"));
    // Not a key at all.
    key["private_key"] =
        serde_json::Value::String("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----".into());
    let mut o = g.options(&unique("bad-"), "");
    o.account = cloudsync::remote::gcs::auth::ServiceAccount::parse(&key).unwrap();
    assert_eq!(GcsRemote::new(o).err().map(|e| e.kind()), Some(Kind::Usage));
}

#[test]
fn a_resumable_upload_resumes_after_a_failure() {
    let g = gcs();
    let bucket = unique("res-");
    g.remote(&bucket, "");
    let proxy = FaultProxy::start(&g.endpoint);
    let mut o = g.options(&bucket, "");
    o.endpoint = proxy.endpoint.clone();
    o.chunk_size = 256 * 1024;
    let r = GcsRemote::new(o).unwrap();
    let data: Vec<u8> = (0..(256 * 1024 * 4 + 100)).map(|i| (i % 253) as u8).collect();
    // The third chunk's answer is lost: the upload asks the session and goes on.
    let puts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let p2 = puts.clone();
    proxy.add(
        1,
        move |s| s.method == "PUT" && p2.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 2,
        Fault::ResetBeforeResponse,
    );
    let e = put(&r, "big.bin", &data).unwrap();
    assert_eq!(e.md5, Some(md5::Md5::digest(&data).into()));
    let l = r.list_dir(&RelPath::root(), &mut |_| {}).unwrap();
    let mut back = Vec::new();
    r.open(&rel("big.bin"), &l[0], 0, u64::MAX).unwrap().reader.read_to_end(&mut back).unwrap();
    assert!(back == data, "content differs after a resumed upload");
    let chunk_puts = proxy.count(|s| s.method == "PUT");
    assert!(chunk_puts <= 5 + 2, "resumed, not restarted: {chunk_puts} PUTs");
}

use md5::Digest;

#[test]
fn the_registry_builds_gcs_through_the_emulator_variable() {
    let g = gcs();
    // SAFETY: only this test of this binary reads the variable.
    unsafe { std::env::set_var("STORAGE_EMULATOR_HOST", &g.endpoint) };
    let bucket = unique("reg-");
    g.remote(&bucket, "");
    let cred = g.credential_provider();
    cloudsync::task::runner::verify_credential(&cred).unwrap();
    let buckets = cloudsync::task::runner::list_buckets(&cred).unwrap();
    assert!(buckets.iter().any(|(n, _)| *n == bucket), "{buckets:?}");
    let attrs = serde_json::json!({"bucket": bucket, "folder": "x", "bucket_policy_only": true});
    let r = cloudsync::task::runner::build_remote(&cred, attrs.as_object().unwrap(), None).unwrap();
    put(r.as_ref(), "y", b"z").unwrap();
    assert_eq!(r.list_dir(&RelPath::root(), &mut |_| {}).unwrap().len(), 1);
}
