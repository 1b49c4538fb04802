//! Azure Blob against Azurite: wrong keys and account names fail with sentences that name
//! no secret, and the registry builds, verifies and lists through a stored credential's
//! fields.

mod common;

use cloudsync::Kind;
use cloudsync::path::RelPath;
use cloudsync::remote::Remote;
use cloudsync::remote::azureblob::{AzureOptions, AzureRemote};
use common::servers::{AZURE_ACCOUNT, azurite, unique};

#[test]
fn a_wrong_key_fails_with_a_sentence_and_no_secret() {
    let az = azurite();
    let container = unique("k");
    az.remote(&container, "");
    // A well-formed key of another account.
    let other = "b3RoZXIta2V5LW9mLWFub3RoZXItYWNjb3VudC0wMTIzNDU2Nzg5";
    let r = AzureRemote::new(AzureOptions::new(AZURE_ACCOUNT, other, &az.endpoint, &container, "")).unwrap();
    let e = r.list_dir(&RelPath::root(), &mut |_| {}).unwrap_err();
    assert_eq!(e.kind(), Kind::Permission, "{e}");
    let text = e.to_string();
    assert!(text.contains("the account name or key is wrong"), "{text}");
    assert!(!text.contains(other));
    // A key that is not base64 at all is refused before any request.
    let e =
        AzureRemote::new(AzureOptions::new(AZURE_ACCOUNT, "not a key!", &az.endpoint, &container, "")).err().unwrap();
    assert_eq!(e.kind(), Kind::Usage);
    assert!(!e.to_string().contains("not a key!"));
}

#[test]
fn a_missing_container_reads_as_missing_and_is_created_by_a_push() {
    let az = azurite();
    let container = unique("m");
    let r = AzureRemote::new(az.options(&container, "sub")).unwrap();
    assert_eq!(r.root_state().unwrap(), cloudsync::remote::RootState::Missing);
    let e = r.list_dir(&RelPath::root(), &mut |_| {}).unwrap_err();
    assert_eq!(e.kind(), Kind::DirNotFound);
    assert!(e.to_string().contains(&format!("container \"{container}\" does not exist")), "{e}");
    r.mkdir(&RelPath::root()).unwrap();
    assert!(r.list_dir(&RelPath::root(), &mut |_| {}).unwrap().is_empty());
}

#[test]
fn the_registry_builds_azure_and_verifies_it() {
    let az = azurite();
    let container = unique("r");
    az.remote(&container, "");
    let cred = az.credential_provider();
    cloudsync::task::runner::verify_credential(&cred).unwrap();
    let buckets = cloudsync::task::runner::list_buckets(&cred).unwrap();
    assert!(buckets.iter().any(|(n, _)| *n == container), "{buckets:?}");
    let attrs = serde_json::json!({"bucket": container, "folder": "/x/"});
    let r = cloudsync::task::runner::build_remote(&cred, attrs.as_object().unwrap(), None).unwrap();
    assert_eq!(r.describe(), format!("azureblob:{container}/x"));
    let mut bad = cred.clone();
    bad.insert("key".into(), serde_json::json!("b3RoZXIta2V5LW9mLWFub3RoZXItYWNjb3VudA=="));
    assert_eq!(cloudsync::task::runner::verify_credential(&bad).unwrap_err().kind(), Kind::Permission);
}
