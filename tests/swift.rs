//! OpenStack Swift against the real Swift servers (tests/fakes/swift_saio.py) and a
//! Keystone front (tests/fakes/keystone.py): every authentication TrueNAS offers, wrong
//! passwords, the index sparing a HEAD per object, and large objects (segments written,
//! kept by a metadata update, removed with the object and after a failed upload).

mod common;

use cloudsync::Kind;
use cloudsync::engine::{self, Mode, SyncOptions};
use cloudsync::index::Index;
use cloudsync::path::RelPath;
use cloudsync::remote::local::LocalRemote;
use cloudsync::remote::swift::auth::SwiftAuth;
use cloudsync::remote::swift::{SwiftOptions, SwiftRemote};
use cloudsync::remote::{PutInfo, Remote};
use common::servers::{swift, unique};
use common::{Bytes, Recorder, T1, T2};
use std::io::Read;
use std::sync::Arc;

fn rel(p: &str) -> RelPath {
    RelPath::from_str_checked(p).unwrap()
}

fn put(r: &dyn Remote, path: &str, data: &[u8]) -> cloudsync::Result<cloudsync::remote::Entry> {
    let info = PutInfo { size: data.len() as u64, mtime: Some(T1), ..PutInfo::default() };
    r.put(&rel(path), &Bytes(data.to_vec(), T1), &info)
}

fn lists(auth: SwiftAuth) -> cloudsync::Result<usize> {
    let container = unique("auth");
    swift().remote(&container, "");
    let r = SwiftRemote::new(SwiftOptions::new(auth, &container, ""), None)?;
    put(&r, "x", b"y")?;
    Ok(r.list_dir(&RelPath::root(), &mut |_| {})?.len())
}

#[test]
fn every_authentication_truenas_offers() {
    let sw = swift();
    assert_eq!(lists(sw.auth_v1()).unwrap(), 1);
    let ks = |v: &str| format!("{}/{v}", sw.keystone);
    let base = SwiftAuth { user: "tester".into(), key: "testing".into(), tenant: "test".into(), ..Default::default() };
    // v2, the version read from the URL.
    assert_eq!(lists(SwiftAuth { auth: ks("v2.0"), ..base.clone() }).unwrap(), 1);
    // v3 with user name (domain Default when none is given), region and endpoint type.
    let v3 = SwiftAuth { auth: ks("v3"), region: "RegionOne".into(), endpoint_type: "internal".into(), ..base.clone() };
    assert_eq!(lists(v3.clone()).unwrap(), 1);
    assert_eq!(
        lists(SwiftAuth { domain: "Default".into(), tenant_domain: "Default".into(), ..v3.clone() }).unwrap(),
        1
    );
    // v3 by user id and project id, auth_version given explicitly.
    let by_id = SwiftAuth {
        auth: sw.keystone.clone() + "/v3",
        user: String::new(),
        user_id: "u-tester".into(),
        tenant: String::new(),
        tenant_id: "p-test".into(),
        auth_version: 3,
        ..base.clone()
    };
    assert_eq!(lists(by_id).unwrap(), 1);
    // v3 application credentials, by id and by name.
    let app = SwiftAuth {
        auth: ks("v3"),
        key: String::new(),
        application_credential_id: "ac-id".into(),
        application_credential_secret: "ac-secret".into(),
        tenant: String::new(),
        ..base.clone()
    };
    assert_eq!(lists(app.clone()).unwrap(), 1);
    let by_name =
        SwiftAuth { application_credential_id: String::new(), application_credential_name: "ac-name".into(), ..app };
    assert_eq!(lists(by_name).unwrap(), 1);
    // A storage URL and token given: no authentication at all.
    let agent = ureq::Agent::new_with_defaults();
    let r = agent
        .get(format!("{}/auth/v1.0", sw.proxy))
        .header("x-auth-user", "test:tester")
        .header("x-auth-key", "testing")
        .call()
        .unwrap();
    let pre = SwiftAuth {
        storage_url: r.headers().get("x-storage-url").unwrap().to_str().unwrap().into(),
        auth_token: r.headers().get("x-auth-token").unwrap().to_str().unwrap().into(),
        ..Default::default()
    };
    assert_eq!(lists(pre).unwrap(), 1);
}

#[test]
fn wrong_credentials_fail_with_sentences() {
    let sw = swift();
    let e = lists(SwiftAuth { key: "wrong".into(), ..sw.auth_v1() }).unwrap_err();
    assert_eq!(e.kind(), Kind::Permission, "{e}");
    assert!(e.to_string().contains("Swift refused the credentials"), "{e}");
    assert!(!e.to_string().contains("wrong"));
    let ks3 = SwiftAuth {
        auth: format!("{}/v3", sw.keystone),
        user: "tester".into(),
        key: "nope".into(),
        ..Default::default()
    };
    assert_eq!(lists(ks3).unwrap_err().kind(), Kind::Permission);
    let no_version = SwiftAuth { auth: format!("{}/identity", sw.keystone), ..SwiftAuth::default() };
    let e = SwiftRemote::new(SwiftOptions::new(no_version, "c", ""), None).err().unwrap();
    assert!(e.to_string().contains("Can't find AuthVersion"), "{e}");
}

#[test]
fn a_no_op_resync_sends_no_head_per_object() {
    let sw = swift();
    let tmp = tempfile::tempdir().unwrap();
    let src_dir = tmp.path().join("src");
    for i in 0..20 {
        let p = src_dir.join(format!("d{}/f{i}", i % 3));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, format!("file {i}")).unwrap();
        common::set_mtime(&p, T1 + i);
    }
    let src = LocalRemote::new(src_dir.clone(), Default::default(), None);
    let index = Arc::new(Index::open(&tmp.path().join("index.db")).unwrap());
    let container = unique("noop");
    let opts =
        SyncOptions { mode: Mode::Sync, observer: Arc::new(Recorder::default()), retries: 1, ..SyncOptions::default() };
    let first = sw.remote_with(&container, "", Some(index.clone()), |_| {});
    assert!(engine::run(&src, first.as_ref(), &opts).error.is_none());
    first.flush();
    // A fresh remote (a new run) with the same index: listings only.
    let again = sw.remote_with(&container, "", Some(index.clone()), |_| {});
    let rec = Arc::new(Recorder::default());
    let opts = SyncOptions { observer: rec.clone(), ..opts };
    assert!(engine::run(&src, again.as_ref(), &opts).error.is_none());
    assert_eq!(common::transfers(&rec.events.lock().unwrap()), 0);
    let counts: std::collections::HashMap<_, _> = again.request_counts().into_iter().collect();
    assert_eq!(counts["HEAD"], 0, "{counts:?}");
    // Without the index every object costs a HEAD (rclone's behaviour).
    let blind = sw.remote_with(&container, "", None, |_| {});
    assert!(engine::run(&src, blind.as_ref(), &opts).error.is_none());
    let counts: std::collections::HashMap<_, _> = blind.request_counts().into_iter().collect();
    assert_eq!(counts["HEAD"], 20, "{counts:?}");
}

fn segments(container: &str) -> usize {
    let r = swift().remote(&format!("{container}_segments"), "");
    let mut n = 0;
    let mut stack = vec![RelPath::root()];
    while let Some(d) = stack.pop() {
        for e in r.list_dir(&d, &mut |_| {}).unwrap_or_default() {
            let p = d.join(&e.name).unwrap();
            if e.is_dir() { stack.push(p) } else { n += 1 }
        }
    }
    n
}

#[test]
fn large_objects_keep_and_lose_their_segments_as_they_should() {
    let sw = swift();
    let container = unique("dlo");
    let r = sw.remote_with(&container, "", None, |o| o.chunk_size = 100_000);
    let data: Vec<u8> = (0..350_000u32).map(|i| (i % 251) as u8).collect();
    let e = put(r.as_ref(), "big.bin", &data).unwrap();
    assert_eq!(e.size, 350_000);
    assert_eq!(segments(&container), 4);
    let l = r.list_dir(&RelPath::root(), &mut |_| {}).unwrap();
    assert_eq!(l[0].size, 350_000, "the manifest lists as 0 bytes: its real size is asked for");
    // A new time keeps it a large object.
    r.set_mod_time(&rel("big.bin"), &l[0], T2, Default::default()).unwrap();
    let l = r.list_dir(&RelPath::root(), &mut |_| {}).unwrap();
    assert_eq!(r.mod_time(&rel("big.bin"), &l[0]).unwrap(), T2);
    let mut back = Vec::new();
    r.open(&rel("big.bin"), &l[0], 0, u64::MAX).unwrap().reader.read_to_end(&mut back).unwrap();
    assert!(back == data);
    // Replacing it by a small object removes the old segments.
    put(r.as_ref(), "big.bin", b"small now").unwrap();
    assert_eq!(segments(&container), 0);
    // And deleting a large object deletes its segments.
    put(r.as_ref(), "big2.bin", &data).unwrap();
    assert_eq!(segments(&container), 4);
    r.delete(&rel("big2.bin"), &l[0]).unwrap();
    assert_eq!(segments(&container), 0);
}

#[test]
fn a_failed_large_upload_removes_its_segments() {
    let sw = swift();
    let container = unique("fail");
    let r = sw.remote_with(&container, "", None, |o| {
        o.chunk_size = 100_000;
        o.http.retries = 1;
    });
    // A source that fails midway through its third segment.
    struct Failing(Vec<u8>);
    impl cloudsync::remote::Source for Failing {
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
        fn mtime(&self) -> cloudsync::Result<i64> {
            Ok(T1)
        }
        fn open_at(&self, offset: u64, len: u64) -> cloudsync::Result<Box<dyn Read + Send + '_>> {
            if offset >= 200_000 {
                return Err(cloudsync::Error::new(Kind::Io, "disk read error"));
            }
            Ok(Box::new(&self.0[offset as usize..(offset + len) as usize]))
        }
    }
    let src = Failing(vec![3u8; 350_000]);
    let info = PutInfo { size: 350_000, mtime: Some(T1), md5: Some([0u8; 16]), ..PutInfo::default() };
    let e = r.put(&rel("big.bin"), &src, &info).unwrap_err();
    assert_eq!(e.kind(), Kind::Io, "{e}");
    assert_eq!(segments(&container), 0, "the uploaded segments are removed");
    assert!(r.list_dir(&RelPath::root(), &mut |_| {}).unwrap().is_empty());
}

#[test]
fn the_registry_builds_swift_and_verifies_it() {
    let sw = swift();
    let container = unique("reg");
    sw.remote(&container, "");
    let cred = sw.credential_provider();
    cloudsync::task::runner::verify_credential(&cred).unwrap();
    let buckets = cloudsync::task::runner::list_buckets(&cred).unwrap();
    assert!(buckets.iter().any(|(n, _)| *n == container), "{buckets:?}");
    let attrs = serde_json::json!({"bucket": container, "folder": "/x"});
    let r = cloudsync::task::runner::build_remote(&cred, attrs.as_object().unwrap(), None).unwrap();
    put(r.as_ref(), "y", b"z").unwrap();
    assert_eq!(r.list_dir(&RelPath::root(), &mut |_| {}).unwrap().len(), 1);
}
