//! Fuzz targets on the stable toolchain (no cargo-fuzz: there is no nightly here). Each
//! target runs a seeded mutation fuzzer over its checked-in corpus (tests/fuzz/<target>/)
//! for a bounded time: `CLOUDSYNC_FUZZ_SECS` seconds per target (2 under the test
//! command; set it higher for a real session, e.g. 600). A panic, a property that fails
//! (a round trip that does not come back, a C API call that reports a caught panic) fails
//! the test and the input is written to target/fuzz-crashes/ to be added to the corpus.
//!
//! Parsers of hostile input: the S3 XML documents, crypt names and content headers, filter
//! rules, bandwidth timetables, cron fields and the C API's JSON bodies.

mod common;

use cloudsync::crypt::content::{DecryptReader, EncryptReader};
use cloudsync::crypt::{Keys, NameCipher, NameEncoding, NameMode};
use cloudsync::engine::bwlimit::BwTimetable;
use cloudsync::engine::filter::FilterBuilder;
use cloudsync::remote::s3::xml;
use common::Rng;
use std::ffi::{CString, c_char};
use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const MAX_LEN: usize = 16 * 1024;

fn pick(rng: &mut Rng, n: usize) -> usize {
    rng.below(n as u64) as usize
}

fn mutate(input: &[u8], corpus: &[Vec<u8>], dict: &[&[u8]], rng: &mut Rng) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + pick(rng, 4) {
        let len = v.len();
        match pick(rng, 9) {
            0 if len > 0 => {
                let i = pick(rng, len);
                v[i] ^= 1 << pick(rng, 8);
            }
            1 if len > 0 => {
                let i = pick(rng, len);
                v[i] = rng.next() as u8;
            }
            2 => {
                let at = pick(rng, len + 1);
                let n = 1 + pick(rng, 8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(at..at, bytes);
            }
            3 if len > 0 => {
                let a = pick(rng, len);
                let b = (a + 1 + pick(rng, 16)).min(len);
                v.drain(a..b);
            }
            4 if len > 0 => {
                let a = pick(rng, len);
                let b = (a + 1 + pick(rng, 64)).min(len);
                let piece = v[a..b].to_vec();
                let at = pick(rng, v.len() + 1);
                v.splice(at..at, piece);
            }
            5 if !dict.is_empty() => {
                let tok = dict[pick(rng, dict.len())];
                let at = pick(rng, len + 1);
                v.splice(at..at, tok.iter().copied());
            }
            6 if !corpus.is_empty() => {
                let other = &corpus[pick(rng, corpus.len())];
                let cut = pick(rng, len + 1);
                let from = pick(rng, other.len() + 1);
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            7 if len > 0 => v.truncate(pick(rng, len)),
            _ => {
                // A boundary value in place.
                let specials: [&[u8]; 6] = [b"0", b"-1", b"18446744073709551616", b"\xff\xfe", b"\0", b"%"];
                let tok = specials[pick(rng, specials.len())];
                let at = pick(rng, len + 1);
                v.splice(at..at, tok.iter().copied());
            }
        }
    }
    v.truncate(MAX_LEN);
    v
}

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz").join(target)
}

/// Run `check` on the corpus and then on mutations of it until the time is up. `check`
/// returns `Err(why)` for a broken property; a panic counts the same.
fn fuzz(target: &str, dict: &[&[u8]], check: impl Fn(&[u8]) -> Result<(), String>) {
    let secs: f64 = std::env::var("CLOUDSYNC_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let mut corpus: Vec<Vec<u8>> = std::fs::read_dir(corpus_dir(target))
        .unwrap_or_else(|e| panic!("{target}: corpus missing: {e}"))
        .flatten()
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    corpus.sort();
    assert!(!corpus.is_empty(), "{target}: empty corpus");
    let seed = std::env::var("CLOUDSYNC_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x00C0_FFEE_u64);
    let mut rng =
        Rng(seed ^ target.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3)));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut runs = 0u64;
    let run_one = |input: &[u8]| -> Result<(), String> {
        match catch_unwind(AssertUnwindSafe(|| check(input))) {
            Ok(r) => r,
            Err(p) => Err(format!(
                "panic: {}",
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            )),
        }
    };
    let report = |input: &[u8], why: String| -> ! {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-crashes");
        let _ = std::fs::create_dir_all(&dir);
        let name = dir.join(format!("{target}-{:016x}", input.iter().fold(0u64, |h, b| h.rotate_left(5) ^ *b as u64)));
        let _ = std::fs::write(&name, input);
        panic!(
            "{target}: {why}\ninput ({} bytes, saved to {}): {:?}",
            input.len(),
            name.display(),
            String::from_utf8_lossy(input)
        );
    };
    for input in &corpus {
        if let Err(why) = run_one(input) {
            report(input, why);
        }
        runs += 1;
    }
    while Instant::now() < deadline {
        let base = corpus[pick(&mut rng, corpus.len())].clone();
        let input = mutate(&base, &corpus, dict, &mut rng);
        if let Err(why) = run_one(&input) {
            report(&input, why);
        }
        runs += 1;
        // Keep some inputs as new bases, so that mutations can go deeper.
        if pick(&mut rng, 64) == 0 && corpus.len() < 512 {
            corpus.push(input);
        }
    }
    eprintln!("fuzz {target}: {runs} inputs in {secs} s, no failure");
}

fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| Keys::derive("fuzz-password", "fuzz-salt").unwrap())
}

#[test]
fn fuzz_s3_xml() {
    let dict: &[&[u8]] = &[
        b"<ListBucketResult>",
        b"</ListBucketResult>",
        b"<Contents><Key>",
        b"</Key>",
        b"<Size>",
        b"</Size>",
        b"<IsTruncated>true</IsTruncated>",
        b"<NextContinuationToken>",
        b"<EncodingType>url</EncodingType>",
        b"<CommonPrefixes><Prefix>",
        b"&amp;",
        b"&#x0;",
        b"<![CDATA[",
        b"]]>",
        b"<Part><PartNumber>",
        b"<Error><Code>",
        b"%2F",
        b"%",
        b"<?xml version=\"1.0\"?>",
    ];
    fuzz("s3_xml", dict, |input| {
        let _ = xml::parse_list(input);
        let _ = xml::parse_parts(input);
        let _ = xml::parse_upload_id(input);
        let _ = xml::parse_result_etag(input);
        let _ = xml::parse_delete_errors(input);
        let _ = xml::parse_buckets(input);
        let _ = xml::parse_error(input);
        if let Ok(page) = xml::parse_list(input) {
            // What the engine relies on: no key comes back as something unusable silently.
            for o in &page.objects {
                if o.size < -1 {
                    return Err(format!("negative size {} accepted", o.size));
                }
            }
        }
        Ok(())
    });
}

#[test]
fn fuzz_crypt_names() {
    let dict: &[&[u8]] = &[b"/", b"..", b".", b"\xe2\x80\x8b", b"=", b"-", b"_", b"\xf0\x9f\x98\x80", b"\xe2\x90\x80"];
    let ciphers: Vec<(NameCipher, bool)> = [NameMode::Standard, NameMode::Obfuscate, NameMode::Off]
        .into_iter()
        .flat_map(|m| {
            [NameEncoding::Base32, NameEncoding::Base64, NameEncoding::Base32768]
                .into_iter()
                .map(move |e| (NameCipher::new(keys(), m, e, true), m != NameMode::Off))
        })
        .collect();
    fuzz("crypt_names", dict, |input| {
        let text = String::from_utf8_lossy(input);
        // Only names a tree can hold round-trip (rclone refuses to decrypt an empty name).
        let a_path = text.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..");
        for (c, _) in &ciphers {
            let _ = c.decrypt_file_name(&text);
            let _ = c.decrypt_dir_name(&text);
            if !a_path {
                continue;
            }
            if let Ok(enc) = c.encrypt_file_name(&text) {
                match c.decrypt_file_name(&enc) {
                    Ok(back) if back == text => {}
                    other => return Err(format!("{text:?} encrypted to {enc:?} decrypts to {other:?}")),
                }
            }
        }
        Ok(())
    });
}

#[test]
fn fuzz_crypt_content_headers() {
    let dict: &[&[u8]] = &[b"RCLONE\x00\x00", b"RCLONE\x00\x01"];
    fuzz("crypt_content", dict, |input| {
        // Arbitrary bytes as an encrypted file: an error or data, never a panic; and any
        // data that comes out must have authenticated (so a damaged file never does).
        if let Ok(mut r) = DecryptReader::new(input, keys()) {
            let mut out = Vec::new();
            if r.read_to_end(&mut out).is_ok() && !out.is_empty() && !input.starts_with(b"RCLONE\x00\x00") {
                return Err("data came out of a file without rclone's header".into());
            }
        }
        // The input as plaintext: encrypting and decrypting gives it back.
        let mut enc = Vec::new();
        EncryptReader::new(input, keys())
            .map_err(|e| e.to_string())?
            .read_to_end(&mut enc)
            .map_err(|e| e.to_string())?;
        let mut back = Vec::new();
        DecryptReader::new(&enc[..], keys())
            .map_err(|e| e.to_string())?
            .read_to_end(&mut back)
            .map_err(|e| e.to_string())?;
        if back != input {
            return Err("round trip changed the data".into());
        }
        Ok(())
    });
}

#[test]
fn fuzz_filters() {
    let dict: &[&[u8]] = &[
        b"+ ", b"- ", b"**", b"*", b"?", b"[", b"]", b"{", b"}", b"{{", b"}}", b"\\", b"/", b"!", b"{a,b}", b"[!a-z]",
        b"(?i)", b".*", b"\n",
    ];
    fuzz("filters", dict, |input| {
        let text = String::from_utf8_lossy(input);
        let mut b = FilterBuilder::new();
        for line in text.lines() {
            let _ = b.add_rule(line);
            let _ = b.add_include(line);
            let _ = b.add_exclude(line);
        }
        if let Ok(f) = b.build() {
            for p in [&b"a"[..], b"dir/file.txt", b"\xff\xfe/x", b"", b".hidden/.x", input] {
                let _ = f.include_file(p);
                let _ = f.include_dir(p);
            }
        }
        Ok(())
    });
}

#[test]
fn fuzz_bwlimit_timetables() {
    let dict: &[&[u8]] =
        &[b"Mon-", b"Sun-", b"00:00,", b"23:59,", b"off", b"10M", b"512k", b":", b" ", b"1G:off", b"-"];
    fuzz("bwlimit", dict, |input| {
        let text = String::from_utf8_lossy(input);
        if let Ok(t) = BwTimetable::parse(&text) {
            for (d, h, m) in [(0, 0, 0), (6, 23, 59), (3, 12, 30)] {
                let _ = t.limit_at(d, h, m);
            }
        }
        Ok(())
    });
}

/// A store the C API targets share, opened through the C ABI itself.
fn store() -> usize {
    static S: OnceLock<(usize, tempfile::TempDir)> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let db = CString::new(dir.path().join("db.sqlite").to_str().unwrap()).unwrap();
        let seed = CString::new(dir.path().join("seed").to_str().unwrap()).unwrap();
        let mut store = std::ptr::null_mut();
        let rc = unsafe {
            cloudsync::ffi::cloudsync_store_open(db.as_ptr(), seed.as_ptr(), &mut store, std::ptr::null_mut())
        };
        assert_eq!(rc as u32, 0);
        (store as usize, dir)
    })
    .0
}

/// Call a JSON-taking C function with `body` (NUL-terminated as C gives it); a caught
/// panic (code 2) is a failure, every other code is an answer.
fn c_call(
    f: unsafe extern "C" fn(
        *const cloudsync::ffi::cloudsync_store,
        *const c_char,
        *mut *mut c_char,
        *mut *mut cloudsync::ffi::cloudsync_error,
    ) -> cloudsync::ffi::cloudsync_result,
    body: &[u8],
) -> Result<(), String> {
    let mut bytes: Vec<u8> = body.iter().copied().filter(|&b| b != 0).collect();
    bytes.push(0);
    let (mut out, mut err) = (std::ptr::null_mut(), std::ptr::null_mut());
    let rc = unsafe { f(store() as *const _, bytes.as_ptr() as *const c_char, &mut out, &mut err) } as u32;
    unsafe {
        cloudsync::ffi::cloudsync_string_free(out);
        cloudsync::ffi::cloudsync_error_free(err);
    }
    match rc {
        2 => Err("the call panicked (caught at the API boundary)".into()),
        0..=20 => Ok(()),
        other => Err(format!("unknown result code {other}")),
    }
}

#[test]
fn fuzz_cron_fields() {
    let dict: &[&[u8]] =
        &[b"*", b"*/", b",", b"-", b"L", b"W", b"#", b"?", b"60", b"24", b"32", b"13", b"jan", b"sun", b"0-59/0"];
    fuzz("cron", dict, |input| {
        let text = String::from_utf8_lossy(input);
        let f: Vec<&str> = text.split(' ').collect();
        let get = |i: usize| f.get(i).copied().unwrap_or("*");
        let body = serde_json::json!({
            "path": "/mnt/tank/data", "credentials": 1, "attributes": {"bucket": "b", "folder": ""},
            "direction": "PUSH", "transfer_mode": "COPY",
            "schedule": {"minute": get(0), "hour": get(1), "dom": get(2), "month": get(3), "dow": get(4)}
        });
        c_call(cloudsync::ffi::cloudsync_task_validate, body.to_string().as_bytes())
    });
}

#[test]
fn fuzz_c_api_json_bodies() {
    let dict: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b":",
        b",",
        b"null",
        b"true",
        b"1e999",
        b"-0",
        b"\"\\u0000\"",
        b"\"\\ud800\"",
        b"\"provider\"",
        b"\"type\"",
        b"\"S3\"",
        b"\"attributes\"",
        b"\"schedule\"",
        b"\"encryption\"",
        b"\"args\"",
        b"\"bwlimit\"",
        b"\"exclude\"",
        b"\"pre_script\"",
    ];
    fuzz("capi_json", dict, |input| {
        c_call(cloudsync::ffi::cloudsync_task_validate, input)?;
        c_call(cloudsync::ffi::cloudsync_credential_create, input)?;
        c_call(cloudsync::ffi::cloudsync_task_create, input)
    });
}
