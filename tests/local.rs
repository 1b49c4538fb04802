//! Local filesystem behaviour: symlinks (skipped, followed, loops), writes that a planted
//! symlink cannot redirect, the bandwidth limit.

mod common;

use cloudsync::engine::{self, BwTimetable, Mode, SyncOptions};
use cloudsync::remote::local::{LocalOptions, LocalRemote};
use common::*;
use std::os::unix::fs::symlink;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn side(dir: &std::path::Path, follow: bool) -> Side {
    Side {
        remote: Arc::new(LocalRemote::new(
            dir.to_path_buf(),
            LocalOptions { follow_symlinks: follow, ..LocalOptions::default() },
            None,
        )),
        local_root: Some(dir.to_path_buf()),
    }
}

#[test]
fn symlinks_are_skipped_with_a_warning_by_default() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("real")).unwrap();
    std::fs::write(src.join("real/f"), b"f").unwrap();
    std::fs::write(tmp.path().join("outside"), b"secret").unwrap();
    symlink(tmp.path().join("outside"), src.join("link-to-file")).unwrap();
    symlink(src.join("real"), src.join("link-to-dir")).unwrap();
    let (rep, _) =
        run_between(side(&src, false).remote.as_ref(), &side(&tmp.path().join("dst"), false), Mode::Sync, |_| {});
    assert!(rep.error.is_none());
    assert_eq!(side(&tmp.path().join("dst"), false).file_paths().into_iter().collect::<Vec<_>>(), vec!["real/f"]);
}

#[test]
fn follow_symlinks_copies_targets() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("real")).unwrap();
    std::fs::write(src.join("real/f"), b"f").unwrap();
    std::fs::write(tmp.path().join("outside"), b"target content").unwrap();
    symlink(tmp.path().join("outside"), src.join("link-to-file")).unwrap();
    symlink(src.join("real"), src.join("link-to-dir")).unwrap();
    let dst = side(&tmp.path().join("dst"), false);
    let (rep, _) = run_between(side(&src, true).remote.as_ref(), &dst, Mode::Sync, |_| {});
    assert!(rep.error.is_none(), "{:?}", rep.error);
    let files = dst.files();
    assert_eq!(files.keys().collect::<Vec<_>>(), vec!["link-to-dir/f", "link-to-file", "real/f"]);
    assert_eq!(files["link-to-file"].0, b"target content");
}

/// rclone 1.60 follows `self -> .` forever; cloudsync detects the loop, reports it as an
/// error, copies everything else and (because of the error) deletes nothing.
#[test]
fn symlink_loops_are_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("a/b")).unwrap();
    std::fs::write(src.join("a/b/f"), b"f").unwrap();
    symlink(".", src.join("self")).unwrap();
    symlink("..", src.join("a/b/up")).unwrap();
    let dst_dir = tmp.path().join("dst");
    std::fs::create_dir_all(&dst_dir).unwrap();
    std::fs::write(dst_dir.join("dst-only"), b"x").unwrap();
    let dst = side(&dst_dir, false);
    let started = Instant::now();
    let (rep, _) = run_between(side(&src, true).remote.as_ref(), &dst, Mode::Sync, |_| {});
    assert!(started.elapsed() < Duration::from_secs(20));
    let err = rep.error.expect("a loop is an error");
    assert!(err.to_string().contains("directory loop detected"), "{err}");
    let files = dst.file_paths();
    assert!(files.contains("a/b/f"));
    assert!(files.contains("dst-only"), "no deletions after an error");
    assert!(files.len() < 10, "{files:?}");
}

/// A symlink planted in the destination cannot redirect a pulled file outside it.
#[test]
fn planted_symlink_cannot_redirect_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("docs")).unwrap();
    std::fs::write(src.join("docs/report"), b"data").unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let dst_dir = tmp.path().join("dst");
    std::fs::create_dir_all(&dst_dir).unwrap();
    symlink(&outside, dst_dir.join("docs")).unwrap();
    let dst = LocalRemote::new(dst_dir.clone(), LocalOptions::default(), None);
    let rep = engine::run(
        &LocalRemote::new(src, LocalOptions::default(), None),
        &dst,
        &SyncOptions { retries: 1, ..Default::default() },
    );
    assert!(rep.error.is_some(), "writing through a symlink must fail");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "nothing may appear outside the destination");
}

/// The bandwidth limit holds across all transfers (a lower bound only: a slow machine
/// cannot make it fail).
#[test]
fn bandwidth_limit_applies_across_transfers() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..4 {
        std::fs::write(src.join(format!("f{i}")), vec![0u8; 512 * 1024]).unwrap();
    }
    let opts = SyncOptions { bwlimit: BwTimetable::parse("1M").unwrap(), ..Default::default() };
    let started = Instant::now();
    let rep = engine::run(
        &LocalRemote::new(src, LocalOptions::default(), None),
        &LocalRemote::new(tmp.path().join("dst"), LocalOptions::default(), None),
        &opts,
    );
    assert!(rep.error.is_none());
    assert!(started.elapsed() >= Duration::from_millis(1500), "2 MiB at 1 MiB/s took {:?}", started.elapsed());
}

/// More deletions than are kept in memory: the list continues on disk and every file goes.
#[test]
fn many_deletions_spill_to_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("keep"), b"k").unwrap();
    let dst = tmp.path().join("dst");
    for d in 0..21 {
        let dir = dst.join(format!("d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..500 {
            std::fs::write(dir.join(format!("f{i}")), b"").unwrap();
        }
    }
    let rep = engine::run(
        &LocalRemote::new(src, LocalOptions::default(), None),
        &LocalRemote::new(dst.clone(), LocalOptions::default(), None),
        &SyncOptions::default(),
    );
    assert!(rep.error.is_none(), "{:?}", rep.error);
    assert_eq!(rep.summary.files_deleted, 10_500);
    assert_eq!(std::fs::read_dir(&dst).unwrap().count(), 1, "only `keep` is left");
}

/// Large files are written with several ranged streams in parallel; the result is exact.
#[test]
fn large_file_parallel_write() {
    use cloudsync::path::RelPath;
    use cloudsync::remote::{PutInfo, Remote, Source};
    struct Pattern(u64);
    impl Source for Pattern {
        fn size(&self) -> u64 {
            self.0
        }
        fn mtime(&self) -> cloudsync::Result<i64> {
            Ok(T1)
        }
        fn open_at(&self, offset: u64, len: u64) -> cloudsync::Result<Box<dyn std::io::Read + Send + '_>> {
            struct R(u64, u64);
            impl std::io::Read for R {
                fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                    let n = (buf.len() as u64).min(self.1 - self.0) as usize;
                    for (i, b) in buf[..n].iter_mut().enumerate() {
                        *b = ((self.0 + i as u64) % 251) as u8;
                    }
                    self.0 += n as u64;
                    Ok(n)
                }
            }
            Ok(Box::new(R(offset, offset + len)))
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let size = 256 * 1024 * 1024 + 12_345;
    let dst = LocalRemote::new(tmp.path().to_path_buf(), LocalOptions::default(), None);
    let p = RelPath::from_str_checked("big").unwrap();
    let e = dst.put(&p, &Pattern(size), &PutInfo { size, mtime: Some(T1), ..Default::default() }).unwrap();
    assert_eq!(e.size as u64, size);
    let data = std::fs::read(tmp.path().join("big")).unwrap();
    assert!(data.iter().enumerate().all(|(i, b)| *b == (i as u64 % 251) as u8), "content differs");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1, "no temporary file left");
}

/// A symlink swapped in and out of the destination tree while a SYNC writes, chowns and
/// deletes there: every change goes through directory descriptors opened without
/// following links, so nothing outside the destination is written, re-owned or deleted,
/// whatever the timing. (The run itself may fail where it met the link; that is fine.)
#[test]
fn symlink_swapped_in_during_a_sync_cannot_redirect_anything() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let dst = tmp.path().join("dst");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::create_dir_all(dst.join("sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    for i in 0..200 {
        std::fs::write(src.join(format!("sub/f{i}")), format!("new {i}")).unwrap();
        // Files only in the destination: SYNC deletes them.
        std::fs::write(dst.join(format!("sub/old{i}")), b"old").unwrap();
        // The same names outside: they must survive untouched.
        std::fs::write(outside.join(format!("f{i}")), b"keep").unwrap();
        std::fs::write(outside.join(format!("old{i}")), b"keep").unwrap();
    }
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(&outside, Some(4242), Some(4242)).unwrap();
        std::os::unix::fs::chown(&dst, Some(1001), Some(1001)).unwrap();
    }
    let before: Vec<_> = std::fs::read_dir(&outside).unwrap().map(|e| e.unwrap().file_name()).collect();

    let stop = std::sync::atomic::AtomicBool::new(false);
    let swaps = std::sync::atomic::AtomicU32::new(0);
    let mut failed_runs = 0;
    std::thread::scope(|s| {
        s.spawn(|| {
            let (real, parked) = (dst.join("sub"), dst.join("sub.parked"));
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if std::fs::rename(&real, &parked).is_ok() {
                    let _ = symlink(&outside, &real);
                    swaps.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    std::thread::sleep(Duration::from_micros(300));
                    let _ = std::fs::remove_file(&real);
                    let _ = std::fs::rename(&parked, &real);
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        for _ in 0..20 {
            let dst_side = side(&dst, false);
            let rep = engine::run(
                side(&src, false).remote.as_ref(),
                dst_side.remote.as_ref(),
                &SyncOptions { transfers: 8, retries: 1, ..SyncOptions::default() },
            );
            failed_runs += usize::from(rep.error.is_some());
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });

    let swaps = swaps.into_inner();
    eprintln!("{swaps} swaps, {failed_runs} of 20 runs met the link");
    assert!(swaps >= 20, "the race was not exercised ({swaps} swaps)");
    let after: Vec<_> = std::fs::read_dir(&outside).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(before.len(), after.len(), "files appeared or vanished outside the destination");
    for e in std::fs::read_dir(&outside).unwrap() {
        let e = e.unwrap();
        assert_eq!(std::fs::read(e.path()).unwrap(), b"keep", "{:?} was overwritten", e.path());
    }
    if nix::unistd::geteuid().is_root() {
        assert_eq!(std::fs::metadata(&outside).unwrap().uid(), 4242, "the outside directory was re-owned");
        for e in std::fs::read_dir(&outside).unwrap() {
            assert_eq!(e.unwrap().metadata().unwrap().uid(), 0, "a file outside was re-owned");
        }
    }
    // The destination itself is intact afterwards: a final run without interference
    // completes the sync.
    let _ = std::fs::remove_file(dst.join("sub")).or(Ok::<(), std::io::Error>(()));
    if !dst.join("sub").exists() && dst.join("sub.parked").exists() {
        std::fs::rename(dst.join("sub.parked"), dst.join("sub")).unwrap();
    }
    let rep =
        engine::run(side(&src, false).remote.as_ref(), side(&dst, false).remote.as_ref(), &SyncOptions::default());
    assert!(rep.error.is_none(), "{:?}", rep.error);
    assert_eq!(std::fs::read(dst.join("sub/f7")).unwrap(), b"new 7");
    assert!(!dst.join("sub/old7").exists());
}
