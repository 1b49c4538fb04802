//! WebDAV beyond the conformance suite: what each vendor's server makes of credentials,
//! chunked uploads, quotas, corrupted storage and interrupted uploads, against the
//! Nextcloud fake (tests/fakes/nextcloud.py), `rclone serve webdav` and WsgiDAV.

mod common;

use cloudsync::Kind;
use cloudsync::path::RelPath;
use cloudsync::remote::Remote;
use cloudsync::remote::webdav::{WebdavOptions, WebdavRemote};
use common::faults::{Fault, FaultProxy};
use common::servers::{self, unique};
use common::{T1, T2, names, put_file as put, rel};

fn read_all(r: &dyn Remote, p: &str) -> Vec<u8> {
    common::read_file(r, p).unwrap()
}

fn counts(r: &dyn Remote) -> std::collections::HashMap<&'static str, u64> {
    r.request_counts().into_iter().collect()
}

fn control(q: &str) {
    let nc = servers::nextcloud();
    ureq::post(format!("{}/control?{q}", nc.origin)).send_empty().unwrap();
}

/// Files on the Nextcloud fake's disk whose names end like temporary uploads.
fn partials_on_server(r: &dyn Remote, dir: &str) -> usize {
    // What the server stores, seen through a plain PROPFIND (listings hide them).
    let nc = servers::nextcloud();
    let url = format!("{}{}", nc.url, dir);
    let resp = ureq::http::Request::builder()
        .method("PROPFIND")
        .uri(&url)
        .header("depth", "1")
        .header("authorization", format!("Basic {}", b64(&format!("{}:{}", nc.user, nc.pass))))
        .body(())
        .unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder().allow_non_standard_methods(true).build().into();
    let body = agent.run(resp).unwrap().into_body().read_to_string().unwrap();
    let _ = r;
    body.matches(".cloudsync-partial<").count() + body.matches(".cloudsync-partial/<").count()
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn a_wrong_password_is_one_clear_sentence_without_the_password() {
    for dav in [servers::nextcloud(), servers::rclone_webdav(), servers::wsgidav()] {
        let mut cred = dav.credential_provider();
        cred.insert("pass".into(), "hunter2-wrong".into());
        let v = cloudsync::task::api::credential_verify(&serde_json::Value::Object(cred.clone()));
        assert_eq!(v["valid"], false, "{v}");
        let err = v["error"].as_str().unwrap();
        assert!(err.contains("refused the user name or password"), "{err}");
        assert!(!v.to_string().contains("hunter2"), "{v}");
        // The right one verifies (the DAV root is listed).
        let v = cloudsync::task::api::credential_verify(&serde_json::Value::Object(dav.credential_provider()));
        assert_eq!(v["valid"], true, "{v}");
    }
}

#[test]
fn vendors_in_any_case_and_sharepoint_refused_clearly() {
    let nc = servers::nextcloud();
    let mut cred = nc.credential_provider();
    cred.insert("vendor".into(), "nextcloud".into());
    let folder = unique("v");
    let attrs = serde_json::json!({"folder": folder});
    let r = cloudsync::task::runner::build_remote(&cred, attrs.as_object().unwrap(), None).unwrap();
    assert!(r.features().hashes.contains(cloudsync::remote::hash::HashType::Sha1));
    put(r.as_ref(), "x", b"x", T1).unwrap();
    cred.insert("vendor".into(), "SHAREPOINT".into());
    let e = cloudsync::task::runner::build_remote(&cred, attrs.as_object().unwrap(), None).err().unwrap();
    assert_eq!(e.kind(), Kind::Unsupported);
    assert!(e.to_string().contains("SharePoint"), "{e}");
}

#[test]
fn a_locked_chunk_merge_is_waited_out_not_uploaded_again() {
    let nc = servers::nextcloud();
    let r = nc.remote_with(&unique("lock"), |o| o.chunk_size = 1 << 20);
    let data: Vec<u8> = (0..(3 << 20) + 5).map(|i| (i * 7 % 251) as u8).collect();
    control("lock_merges=1");
    let e = put(r.as_ref(), "big.bin", &data, T1).unwrap();
    assert_eq!(e.size as usize, data.len());
    let c = counts(r.as_ref());
    assert_eq!(c["PUT"], 4, "four chunks, each sent once: {c:?}");
    assert_eq!(read_all(r.as_ref(), "big.bin"), data);
    assert_eq!(names(r.as_ref(), ""), vec!["big.bin"]);
}

#[test]
fn a_legacy_nextcloud_url_uploads_in_one_request() {
    let nc = servers::nextcloud();
    let folder = unique("legacy");
    let opts =
        WebdavOptions { url: format!("{}/remote.php/webdav/", nc.origin), chunk_size: 1 << 20, ..nc.options(&folder) };
    let r = WebdavRemote::new(opts).unwrap();
    let data = vec![42u8; (2 << 20) + 1];
    put(&r, "f", &data, T1).unwrap();
    assert_eq!(counts(&r)["PUT"], 1);
    assert_eq!(read_all(&r, "f"), data);
}

#[test]
fn a_full_quota_is_quota_and_the_old_version_stays() {
    let nc = servers::nextcloud();
    let folder = unique("quota");
    let r = nc.remote(&folder);
    put(r.as_ref(), "doc", b"the old version", T1).unwrap();
    control(&format!("folder={folder}&quota=1"));
    let err = put(r.as_ref(), "doc", &vec![1u8; 4096], T2).unwrap_err();
    control(&format!("folder={folder}&quota=-1"));
    assert_eq!(err.kind(), Kind::Quota, "{err}");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("Insufficient space"), "Sabre's message is kept: {err}");
    assert_eq!(read_all(r.as_ref(), "doc"), b"the old version");
    assert_eq!(names(r.as_ref(), ""), vec!["doc"]);
    assert_eq!(partials_on_server(r.as_ref(), ""), 0, "the temporary upload is gone");
}

#[test]
fn stored_bytes_that_do_not_hash_right_never_replace_the_file() {
    let nc = servers::nextcloud();
    let folder = unique("corrupt");
    nc.remote(&folder).mkdir(&RelPath::root()).unwrap();
    put(nc.remote(&folder).as_ref(), "doc", b"good old", T1).unwrap();
    let proxy = FaultProxy::start(&nc.origin);
    let mut o = nc.options(&folder);
    o.url = nc.url.replace(&nc.origin, &proxy.endpoint);
    let r = WebdavRemote::new(o).unwrap();
    // The server's own digest of what it stored disagrees with what was sent.
    let bad = "SHA1:0000000000000000000000000000000000000000".to_string();
    proxy.add(
        usize::MAX,
        |s| s.method == "PATCH",
        Fault::EditHeaders { drop: vec!["oc-checksum".into()], add: vec![("OC-Checksum".into(), bad)], flip_at: None },
    );
    let err = put(&r, "doc", b"new version", T2).unwrap_err();
    assert_eq!(err.kind(), Kind::Corrupted, "{err}");
    assert!(err.is_retryable());
    proxy.clear();
    assert_eq!(read_all(&r, "doc"), b"good old");
    assert_eq!(names(&r, ""), vec!["doc"]);
    assert_eq!(partials_on_server(&r, ""), 0);
    assert_eq!(proxy.count(|s| s.method == "MOVE"), 0, "nothing was moved into place");
}

#[test]
fn leftovers_of_a_killed_upload_are_hidden_then_removed() {
    for dav in [servers::nextcloud(), servers::rclone_webdav(), servers::wsgidav()] {
        let folder = unique("left");
        let r = dav.remote(&folder);
        put(r.as_ref(), "keep", b"k", T1).unwrap();
        // What a process killed during an upload leaves: a temporary name next to the target.
        let leftover = ".keep.0badf00d.cloudsync-partial";
        put(r.as_ref(), "tmp-source", b"half", T1).unwrap();
        let moved = ureq::http::Request::builder()
            .method("MOVE")
            .uri(format!("{}{folder}/tmp-source", dav.url))
            .header("destination", format!("{}{folder}/{leftover}", dav.url))
            .header("authorization", format!("Basic {}", b64(&format!("{}:{}", dav.user, dav.pass))))
            .body(())
            .unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder().allow_non_standard_methods(true).build().into();
        let status = agent.run(moved).unwrap().status();
        assert!(status.is_success(), "{status}");
        assert_eq!(names(r.as_ref(), ""), vec!["keep"], "never listed as a file");
        assert_eq!(r.remove_leftovers().unwrap(), 1);
        let again = dav.remote(&folder);
        assert_eq!(names(again.as_ref(), ""), vec!["keep"]);
        assert_eq!(again.remove_leftovers().unwrap(), 0, "gone from the server");
    }
}

#[test]
fn a_push_into_listed_directories_costs_no_mkcol_and_three_requests_a_file() {
    let nc = servers::nextcloud();
    let folder = unique("cost");
    let setup = nc.remote(&folder);
    setup.mkdir(&rel("d")).unwrap();
    let r = nc.remote(&folder);
    r.list_dir(&RelPath::root(), &mut |_| {}).unwrap();
    r.list_dir(&rel("d"), &mut |_| {}).unwrap();
    for i in 0..5 {
        put(r.as_ref(), &format!("d/f{i}"), format!("file {i}").as_bytes(), T1).unwrap();
    }
    let c = counts(r.as_ref());
    assert_eq!((c["MKCOL"], c["PUT"], c["PATCH"], c["MOVE"]), (0, 5, 5, 5), "{c:?}");
    // The checksum the server computed is what later listings show.
    let l = r.list_dir(&rel("d"), &mut |_| {}).unwrap();
    assert!(l.iter().all(|e| e.extra.checksum.is_some()), "{l:?}");
}

#[test]
fn modification_times_land_with_the_upload_on_nextcloud_and_rclone() {
    for dav in [servers::nextcloud(), servers::rclone_webdav()] {
        let r = dav.remote(&unique("mt"));
        put(r.as_ref(), "a", b"a", T1 + 123_456_789).unwrap();
        let l = r.list_dir(&RelPath::root(), &mut |_| {}).unwrap();
        let t = T1 + 123_456_789;
        assert_eq!(l[0].mtime, Some(t - t % 1_000_000_000), "whole seconds, as X-OC-Mtime carries them");
        assert_eq!(counts(r.as_ref()).get("PROPPATCH").copied().unwrap_or(0), 0, "no second request for the time");
    }
}

#[test]
fn a_missing_parent_chain_is_made_and_a_file_root_is_told() {
    let dav = servers::wsgidav();
    let base = unique("chain");
    let r = dav.remote(&format!("{base}/x/y"));
    assert_eq!(r.root_state().unwrap(), cloudsync::remote::RootState::Missing);
    put(r.as_ref(), "deep/er/file", b"d", T1).unwrap();
    assert_eq!(names(r.as_ref(), "deep/er"), vec!["file"]);
    let f = dav.remote(&format!("{base}/x/y/deep/er/file"));
    assert_eq!(f.root_state().unwrap(), cloudsync::remote::RootState::File);
    let e = f.list_dir(&RelPath::root(), &mut |_| {}).unwrap_err();
    assert_eq!(e.kind(), Kind::DirNotFound);
    // rmdir refuses a directory with something in it (DELETE would take it all).
    assert!(r.rmdir(&rel("deep")).is_err());
    assert_eq!(names(r.as_ref(), "deep/er"), vec!["file"]);
}
