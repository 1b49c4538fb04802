//! The sync/copy/move conformance cases of sync-semantics.md §16.2 (rclone's
//! fs/sync/sync_test.go), run on local → local, local → S3 and S3 → local against a real
//! s3s-fs server. Case numbers refer to the spec. Where rclone skips a case for a backend
//! without a feature, the same capability check decides here, and the assertion is never
//! weakened.

mod common;

use cloudsync::Kind;
use cloudsync::engine::{FileAction, FilterBuilder, Mode};
use common::*;
use std::sync::Arc;

fn dst_has_empty_dirs(w: &World) -> bool {
    w.dst.is_local() && w.dst.remote.features().empty_dirs
}

/// Whether either side keeps no modification times (WebDAV "other"): rclone skips the
/// cases that change only times ("Can't run this test on fs which doesn't support mod
/// time"), and those that change only content without a hash to see it.
fn no_modtimes(w: &World) -> bool {
    w.src.remote.features().precision.is_none() || w.dst.remote.features().precision.is_none()
}

/// Whether source and destination share a hash (crypt has none: sync-semantics.md §4.4).
/// A MOVE from a read-only source (HTTP) is refused before anything is copied: it would
/// have to delete each file it copies. True when the case ends there.
fn read_only_move_refused(w: &World) -> bool {
    if !w.source().features().read_only {
        return false;
    }
    let before = w.dst.files();
    let (r, ev) = w.run(Mode::Move, |_| {});
    let e = r.error.as_ref().expect("a MOVE from a read-only source fails");
    assert!(e.to_string().contains("read-only") && e.to_string().contains("COPY"), "{e}");
    assert_eq!(transfers(&ev), 0);
    assert_eq!(w.dst.files(), before, "nothing was copied");
    true
}

fn common_hash(w: &World) -> bool {
    w.src.remote.features().hashes.and(w.dst.remote.features().hashes).preferred().is_some()
}

/// S1: a dry-run copy changes nothing.
fn s01_copy_dry_run(p: Pair) {
    let w = World::new(p);
    w.src.write("sub dir/hello world", b"hello world", T1);
    let (r, ev) = w.run(Mode::Copy, |o| o.dry_run = true);
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(count(&ev, FileAction::WouldCopy), 1);
    assert!(w.dst.files().is_empty());
}

/// S2: copy creates the file with the same size and mtime; directory mtime follows the source.
fn s02_copy(p: Pair) {
    let w = World::new(p);
    w.src.write("sub dir/hello world", b"hello world", T1);
    if let Some(root) = &w.src.local_root {
        set_mtime(&root.join("sub dir"), T2);
    }
    let (r, ev) = w.run(Mode::Copy, |_| {});
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(transfers(&ev), 1);
    expect_files(&w.dst, &[("sub dir/hello world", b"hello world", T1)]);
    if w.src.is_local() && w.dst.is_local() {
        assert_eq!(w.dst.dir_mtime("sub dir"), T2);
    }
}

/// S3: copying from a missing source is an error ("directory not found"), nothing happens.
fn s03_copy_missing_source(p: Pair) {
    let w = World::new(p);
    w.dst.write("keep", b"x", T1);
    let missing: Arc<dyn cloudsync::remote::Remote> = match p {
        Pair::S3Local => w.s3.as_ref().unwrap().remote("bucket", "does/not/exist", None),
        Pair::AzureLocal => common::servers::azurite().remote(&common::servers::unique("m"), "does/not/exist"),
        Pair::B2Local => common::servers::b2().remote(&common::servers::unique("m-"), "does/not/exist"),
        Pair::GcsLocal => common::servers::gcs().remote(&common::servers::unique("m-"), "does/not/exist"),
        Pair::SwiftLocal => common::servers::swift().remote(&common::servers::unique("m"), "does/not/exist"),
        Pair::WebdavLocal => common::servers::nextcloud().remote(&common::servers::unique("m/does/not/exist")),
        Pair::FtpLocal => common::servers::vsftpd().remote(&common::servers::unique("m/does/not/exist")),
        Pair::SftpLocal => common::servers::sshd().remote(&common::servers::unique("m/does/not/exist")),
        Pair::HttpLocal => common::servers::rclone_http().http(&common::servers::unique("m/does/not/exist")),
        _ => Arc::new(cloudsync::remote::local::LocalRemote::new(w.tmp.path().join("nope"), Default::default(), None)),
    };
    for mode in [Mode::Copy, Mode::Sync] {
        let (r, _) = run_between(missing.as_ref(), &w.dst, mode, |_| {});
        let e = r.error.as_ref().expect("an error");
        assert_eq!(e.kind(), Kind::DirNotFound);
        assert_eq!(r.exit_code(), 3);
        assert!(e.to_string().contains("directory not found"), "{e}");
    }
    expect_files(&w.dst, &[("keep", b"x", T1)]);
}

/// S9/S10/S12: empty source directories are created only with create_empty_src_dirs.
fn s09_s10_empty_dirs(p: Pair) {
    for (mode, flag) in [(Mode::Copy, true), (Mode::Copy, false), (Mode::Sync, true), (Mode::Sync, false)] {
        let w = World::new(p);
        if !w.src.is_local() || !dst_has_empty_dirs(&w) {
            return; // rclone skips: the source or destination cannot hold empty directories
        }
        w.src.write("sub dir/hello world", b"hello world", T1);
        w.src.mkdir("sub dir2/sub sub dir2");
        set_mtime(&w.src.local_root.as_ref().unwrap().join("sub dir2/sub sub dir2"), T2);
        set_mtime(&w.src.local_root.as_ref().unwrap().join("sub dir2"), T2);
        let (r, _) = w.run(mode, |o| o.create_empty_src_dirs = flag);
        assert!(r.error.is_none());
        let dirs = w.dst.dirs();
        if flag {
            assert!(dirs.contains("sub dir2") && dirs.contains("sub dir2/sub sub dir2"), "{dirs:?}");
            assert_eq!(w.dst.dir_mtime("sub dir2"), T2);
            assert_eq!(w.dst.dir_mtime("sub dir2/sub sub dir2"), T2);
        } else {
            assert_eq!(dirs.into_iter().collect::<Vec<_>>(), vec!["sub dir".to_string()]);
        }
    }
}

/// S11: move with and without empty directories; the source loses its files.
fn s11_move_empty_dirs(p: Pair) {
    let w = World::new(p);
    if !w.src.is_local() || !dst_has_empty_dirs(&w) {
        return;
    }
    w.src.write("sub dir/hello world", b"hello world", T1);
    w.src.mkdir("sub dir2");
    let (r, _) = w.run(Mode::Move, |o| o.create_empty_src_dirs = true);
    assert!(r.error.is_none());
    assert!(w.src.files().is_empty());
    assert!(w.dst.dirs().contains("sub dir2"));
}

/// S13: a 15-directory tree with distinct mtimes is reproduced exactly (set deepest first).
fn s13_delayed_dir_modtimes(p: Pair) {
    let w = World::new(p);
    if !(w.src.is_local() && w.dst.is_local()) {
        return;
    }
    let root = w.src.local_root.clone().unwrap();
    let mut dirs = Vec::new();
    for a in 0..3 {
        for b in 0..4 {
            let d = format!("a{a}/b{b}");
            w.src.write(&format!("{d}/file"), format!("{a}{b}").as_bytes(), T1);
            dirs.push(d);
        }
        dirs.push(format!("a{a}"));
    }
    for (i, d) in dirs.iter().enumerate() {
        set_mtime(&root.join(d), T1 + i as i64 * 1_000_000_007);
    }
    assert!(w.sync().error.is_none());
    for (i, d) in dirs.iter().enumerate() {
        assert_eq!(w.dst.dir_mtime(d), T1 + i as i64 * 1_000_000_007, "{d}");
    }
}

/// S14: with no_update_dir_modtime an existing destination directory keeps its mtime.
fn s14_no_update_dir_modtime(p: Pair) {
    let w = World::new(p);
    if !(w.src.is_local() && w.dst.is_local()) {
        return;
    }
    w.src.write("sub/f", b"f", T1);
    w.dst.mkdir("sub");
    set_mtime(&w.src.local_root.as_ref().unwrap().join("sub"), T2);
    set_mtime(&w.dst.local_root.as_ref().unwrap().join("sub"), T3);
    let (r, _) = w.run(Mode::Sync, |o| o.no_update_dir_modtime = true);
    assert!(r.error.is_none());
    // The write into "sub" changed its time: what matters is that T2 was not applied.
    assert_ne!(w.dst.dir_mtime("sub"), T2);
}

/// S16: a changed source file overwrites the destination.
fn s16_copy_over_self(p: Pair) {
    let w = World::new(p);
    w.src.write("sub dir/hello world", b"hello world", T1);
    assert!(w.run(Mode::Copy, |_| {}).0.error.is_none());
    w.src.write("sub dir/hello world", b"hello world, changed", T2);
    let (r, ev) = w.run(Mode::Copy, |_| {});
    assert!(r.error.is_none());
    assert_eq!(count(&ev, FileAction::CopiedReplaced), 1);
    expect_files(&w.dst, &[("sub dir/hello world", b"hello world, changed", T2)]);
}

/// S17: move overwrites the destination and empties the source.
fn s17_move_over_self(p: Pair) {
    let w = World::new(p);
    w.src.write("potato", b"new content", T2);
    w.dst.write("potato", b"old", T1);
    if read_only_move_refused(&w) {
        return;
    }
    let (r, _) = w.run(Mode::Move, |_| {});
    assert!(r.error.is_none(), "{:?}", r.error);
    expect_files(&w.dst, &[("potato", b"new content", T2)]);
    assert!(w.src.files().is_empty());
}

/// S18: copy from an empty source leaves the destination alone.
fn s18_copy_after_delete(p: Pair) {
    let w = World::new(p);
    w.dst.write("potato", b"x", T1);
    if !w.src.is_local() {
        w.src.write("other/keep", b"k", T1); // an S3 prefix with nothing in it does not exist
    }
    let (r, _) = w.run(Mode::Copy, |o| if !o.filter.is_empty() {});
    assert!(r.error.is_none());
    assert!(w.dst.files().contains_key("potato"));
}

/// S19: round trip keeps size and mtime.
fn s19_copy_redownload(p: Pair) {
    let w = World::new(p);
    w.src.write("sub dir/hello world", b"hello world", T1);
    w.src.write("sub dir/empty", b"", T2);
    assert!(w.run(Mode::Copy, |_| {}).0.error.is_none());
    expect_files(&w.dst, &[("sub dir/empty", b"", T2), ("sub dir/hello world", b"hello world", T1)]);
}

/// S20: --checksum: an mtime-only change transfers nothing and keeps the old mtime.
fn s20_checksum(p: Pair) {
    let w = World::new(p);
    w.src.write("potato", b"content", T1);
    assert!(w.sync().error.is_none());
    w.src.write("potato", b"content", T2);
    let (r, ev) = w.run(Mode::Sync, |o| o.compare.checksum = true);
    assert!(r.error.is_none());
    assert_eq!(transfers(&ev), 0);
    expect_files(&w.dst, &[("potato", b"content", T1)]);
}

/// S21: --size-only: same size, new content and mtime → nothing changes.
fn s21_size_only(p: Pair) {
    let w = World::new(p);
    w.src.write("potato", b"potato", T1);
    assert!(w.sync().error.is_none());
    w.src.write("potato", b"POTATO", T2);
    let (r, ev) = w.run(Mode::Sync, |o| o.compare.size_only = true);
    assert!(r.error.is_none());
    assert_eq!(transfers(&ev), 0);
    expect_files(&w.dst, &[("potato", b"potato", T1)]);
}

/// S22: --ignore-size: a longer file with the same mtime transfers nothing.
fn s22_ignore_size(p: Pair) {
    let w = World::new(p);
    w.src.write("potato", b"short", T1);
    assert!(w.sync().error.is_none());
    w.src.write("potato", b"much longer now", T1);
    let (_, ev) = w.run(Mode::Sync, |o| o.compare.ignore_size = true);
    assert_eq!(transfers(&ev), 0);
}

/// S23: identical files → 0 transfers; with --ignore-times → 1.
fn s23_ignore_times(p: Pair) {
    let w = World::new(p);
    w.src.write("existing", b"potato", T1);
    assert!(w.sync().error.is_none());
    let (_, ev) = w.run(Mode::Sync, |_| {});
    assert_eq!(transfers(&ev), 0);
    let (_, ev) = w.run(Mode::Sync, |o| o.compare.ignore_times = true);
    assert_eq!(transfers(&ev), 1);
}

/// S24: --ignore-existing leaves a changed destination file alone.
fn s24_ignore_existing(p: Pair) {
    let w = World::new(p);
    w.src.write("existing", b"potato", T1);
    assert!(w.sync().error.is_none());
    w.src.write("existing", b"newpotatoes", T2);
    let (_, ev) = w.run(Mode::Sync, |o| o.compare.ignore_existing = true);
    assert_eq!(transfers(&ev), 0);
    expect_files(&w.dst, &[("existing", b"potato", T1)]);
}

/// S26: same content, newer mtime: dry run changes nothing; a real run updates the mtime
/// in place without re-uploading (both sides have MD5).
fn s26_modtime_only_change(p: Pair) {
    let w = World::new(p);
    if no_modtimes(&w) {
        return;
    }
    w.src.write("empty space", b"stuff", T1);
    assert!(w.sync().error.is_none());
    w.src.write("empty space", b"stuff", T2);
    let (r, ev) = w.run(Mode::Sync, |o| o.dry_run = true);
    assert!(r.error.is_none());
    let planned = if common_hash(&w) { FileAction::WouldUpdateModTime } else { FileAction::WouldCopy };
    assert_eq!(count(&ev, planned), 1);
    expect_files(&w.dst, &[("empty space", b"stuff", T1)]);
    let (r, ev) = w.run(Mode::Sync, |_| {});
    assert!(r.error.is_none());
    if common_hash(&w) {
        assert_eq!(transfers(&ev), 0);
        assert_eq!(count(&ev, FileAction::UpdatedModTime), 1);
    } else {
        // No common hash (crypt): rclone re-uploads ("Copied (replaced existing)").
        assert_eq!(count(&ev, FileAction::CopiedReplaced), 1);
    }
    expect_files(&w.dst, &[("empty space", b"stuff", T2)]);
}

/// S27: --no-update-modtime: nothing transferred, the old mtime stays.
fn s27_no_update_modtime(p: Pair) {
    let w = World::new(p);
    if no_modtimes(&w) {
        return;
    }
    w.src.write("empty space", b"stuff", T1);
    assert!(w.sync().error.is_none());
    w.src.write("empty space", b"stuff", T2);
    let (_, ev) = w.run(Mode::Sync, |o| o.compare.no_update_modtime = true);
    if common_hash(&w) {
        assert_eq!(transfers(&ev), 0);
        expect_files(&w.dst, &[("empty space", b"stuff", T1)]);
    } else {
        // Without a hash the content cannot be shown equal, so it is transferred.
        assert_eq!(transfers(&ev), 1);
        expect_files(&w.dst, &[("empty space", b"stuff", T2)]);
    }
}

/// S28: same size, different content and mtime: exactly one transfer, no modtime fix-up.
fn s28_doesnt_update_modtime(p: Pair) {
    let w = World::new(p);
    if no_modtimes(&w) {
        return;
    }
    w.src.write("foo", b"foo", T2);
    w.dst.write("foo", b"bar", T1);
    let (r, ev) = w.run(Mode::Sync, |_| {});
    assert!(r.error.is_none());
    assert_eq!(transfers(&ev), 1);
    assert_eq!(count(&ev, FileAction::UpdatedModTime), 0);
    expect_files(&w.dst, &[("foo", b"foo", T2)]);
}

/// S29: a new source file is uploaded, the existing one is left alone.
fn s29_after_adding_a_file(p: Pair) {
    let w = World::new(p);
    w.src.write("empty space", b"stuff", T2);
    assert!(w.sync().error.is_none());
    w.src.write("potato", b"------------------------------------------------------------", T3);
    let (_, ev) = w.run(Mode::Sync, |_| {});
    assert_eq!(transfers(&ev), 1);
    assert_eq!(count(&ev, FileAction::CopiedNew), 1);
}

/// S30: same mtime, different size → transfer.
fn s30_size_change_only(p: Pair) {
    let w = World::new(p);
    w.src.write("potato", b"potato", T3);
    w.dst.write("potato", b"different size to make sure it syncs", T3);
    let (_, ev) = w.run(Mode::Sync, |_| {});
    assert_eq!(transfers(&ev), 1);
    expect_files(&w.dst, &[("potato", b"potato", T3)]);
}

/// S31: same size, different content and mtime → transfer.
fn s31_contents_change_only(p: Pair) {
    let w = World::new(p);
    if no_modtimes(&w) && !common_hash(&w) {
        return; // same size, no time, no hash: nothing can tell them apart
    }
    w.src.write("potato", b"SMALLER BUT SAME", T3);
    w.dst.write("potato", b"smaller but same", T2);
    let (_, ev) = w.run(Mode::Sync, |_| {});
    assert_eq!(transfers(&ev), 1);
    expect_files(&w.dst, &[("potato", b"SMALLER BUT SAME", T3)]);
}

/// S32: a dry-run sync changes nothing on either side.
fn s32_remove_add_dry_run(p: Pair) {
    let w = World::new(p);
    w.src.write("empty space", b"stuff", T2);
    w.src.write("potato2", b"------------------------------------------------------------", T1);
    w.dst.write("potato", b"SMALLER BUT SAME", T3);
    w.dst.write("empty space", b"stuff", T2);
    let before_src = w.src.files();
    let before_dst = w.dst.files();
    let (r, ev) = w.run(Mode::Sync, |o| o.dry_run = true);
    assert!(r.error.is_none());
    assert_eq!(count(&ev, FileAction::WouldCopy), 1);
    assert_eq!(count(&ev, FileAction::WouldDelete), 1);
    assert_eq!(w.src.files(), before_src);
    assert_eq!(w.dst.files(), before_dst);
}

/// S33: sync deletes dst-only files and uploads src-only ones; deletions come after.
fn s33_remove_add(p: Pair) {
    let w = World::new(p);
    w.src.write("empty space", b"stuff", T2);
    w.src.write("potato2", b"------------------------------------------------------------", T1);
    w.dst.write("potato", b"SMALLER BUT SAME", T3);
    w.dst.write("empty space", b"stuff", T2);
    let (r, ev) = w.run(Mode::Sync, |_| {});
    assert!(r.error.is_none());
    assert_eq!(count(&ev, FileAction::Deleted), 1);
    let last_copy = ev.iter().rposition(|e| e.action == FileAction::CopiedNew).unwrap();
    let first_delete = ev.iter().position(|e| e.action == FileAction::Deleted).unwrap();
    assert!(last_copy < first_delete, "deletions must come after every transfer");
    expect_files(
        &w.dst,
        &[
            ("empty space", b"stuff", T2),
            ("potato2", b"------------------------------------------------------------", T1),
        ],
    );
}

/// S34: as S33 in subdirectories; dst-only directories go away (where directories exist).
fn s34_remove_add_subdirs(p: Pair) {
    let w = World::new(p);
    w.src.write("a/potato2", b"------------------------------------------------------------", T1);
    w.src.write("e/f/potato3", b"------------------------------------------------------------", T1);
    w.dst.write("b/potato", b"SMALLER BUT SAME", T3);
    w.dst.write("c/non empty space", b"AhHa!", T2);
    w.dst.mkdir("d/e");
    let (r, _) = w.run(Mode::Sync, |_| {});
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(w.dst.file_paths().into_iter().collect::<Vec<_>>(), vec!["a/potato2", "e/f/potato3"]);
    if dst_has_empty_dirs(&w) {
        assert_eq!(w.dst.dirs().into_iter().collect::<Vec<_>>(), vec!["a", "e", "e/f"]);
    }
}

/// S35: with an error during the run new files are copied but nothing is deleted.
fn s35_errors_block_deletions(p: Pair) {
    let w = World::new(p);
    if !w.src.is_local() {
        return; // the error is provoked with an unreadable local file
    }
    if nix::unistd::geteuid().is_root() {
        // root reads every file: provoke the error with a dangling symlink under -L.
        let w = World::with_options(
            p,
            cloudsync::remote::local::LocalOptions { follow_symlinks: true, ..Default::default() },
        );
        w.src.write("a/potato2", b"new", T1);
        std::os::unix::fs::symlink("/nonexistent/target", w.src.local_root.as_ref().unwrap().join("dangling")).unwrap();
        w.dst.write("b/potato", b"old", T3);
        let (r, _) = w.run(Mode::Sync, |_| {});
        assert!(r.error.is_some());
        assert_eq!(r.exit_code(), 6);
        let files = w.dst.file_paths();
        assert!(files.contains("a/potato2"), "new files are still copied");
        assert!(files.contains("b/potato"), "nothing is deleted after an error");
        return;
    }
    w.src.write("a/potato2", b"new", T1);
    w.src.write("locked", b"x", T1);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(w.src.local_root.as_ref().unwrap().join("locked"), std::fs::Permissions::from_mode(0o0))
        .unwrap();
    w.dst.write("b/potato", b"old", T3);
    let (r, _) = w.run(Mode::Sync, |_| {});
    assert!(r.error.is_some());
    assert!(w.dst.file_paths().contains("b/potato"));
}

/// S36: copy never deletes.
fn s36_copy_never_deletes(p: Pair) {
    let w = World::new(p);
    w.src.write("a", b"a", T1);
    w.dst.write("only-on-dst", b"x", T1);
    let (r, ev) = w.run(Mode::Copy, |_| {});
    assert!(r.error.is_none());
    assert_eq!(count(&ev, FileAction::Deleted), 0);
    assert!(w.dst.file_paths().contains("only-on-dst"));
}

/// S37/S38 (filters): excluded files are neither copied nor deleted.
fn s37_exclude_neither_copied_nor_deleted(p: Pair) {
    let w = World::new(p);
    w.src.write("keep.txt", b"k", T1);
    w.src.write("skip.tmp", b"s", T1);
    w.dst.write("other.tmp", b"o", T1);
    let mut b = FilterBuilder::new();
    b.add_exclude("*.tmp").unwrap();
    let filter = Arc::new(b.build().unwrap());
    let (r, _) = w.run(Mode::Sync, |o| o.filter = filter);
    assert!(r.error.is_none());
    assert_eq!(w.dst.file_paths().into_iter().collect::<Vec<_>>(), vec!["keep.txt", "other.tmp"]);
}

/// S39: --update.
fn s39_update_older(p: Pair) {
    let w = World::new(p);
    if no_modtimes(&w) {
        return;
    }
    let days = 86_400 * 1_000_000_000i64;
    w.src.write("one", b"one", T1);
    w.dst.write("one", b"ONE", T2); // dst newer: kept
    w.src.write("two", b"two", T2 + 3 * days);
    w.dst.write("two", b"TWO", T2); // src newer, same size, hashes differ: updated
    w.src.write("three", b"three", T2);
    w.dst.write("three", b"THREE", T2 + 100_000_000); // within 1 s window, same size: kept
    w.src.write("four", b"four", T2);
    w.dst.write("four", b"FOURFOUR", T2 + 100_000_000); // within window, size differs: updated
    w.src.write("five", b"five", T2); // missing: copied
    let (r, _) = w.run(Mode::Sync, |o| {
        o.compare.update = true;
        o.compare.modify_window = 1_000_000_000;
    });
    assert!(r.error.is_none());
    let f = w.dst.files();
    assert_eq!(f["one"].0, b"ONE");
    assert_eq!(f["two"].0, b"two");
    assert_eq!(f["three"].0, b"THREE");
    assert_eq!(f["four"].0, b"four");
    assert_eq!(f["five"].0, b"five");
}

/// S42: move removes source directories only with delete_empty_src_dirs.
fn s42_move_delete_empty_src_dirs(p: Pair) {
    for flag in [true, false] {
        let w = World::new(p);
        if !w.src.is_local() {
            return;
        }
        w.src.write("sub dir/hello world", b"hello world", T1);
        w.src.write("potato", b"p", T1);
        let (r, _) = w.run(Mode::Move, |o| o.delete_empty_src_dirs = flag);
        assert!(r.error.is_none());
        assert!(w.src.files().is_empty());
        assert_eq!(w.src.dirs().contains("sub dir"), !flag);
    }
}

/// S43: move with --ignore-existing leaves a recreated source alone.
fn s43_move_ignore_existing(p: Pair) {
    let w = World::new(p);
    w.src.write("existing", b"potato", T1);
    if read_only_move_refused(&w) {
        return;
    }
    assert!(w.run(Mode::Move, |_| {}).0.error.is_none());
    assert!(w.src.files().is_empty());
    w.src.write("existing", b"newpotatoes", T2);
    let (r, _) = w.run(Mode::Move, |o| o.compare.ignore_existing = true);
    assert!(r.error.is_none());
    expect_files(&w.src, &[("existing", b"newpotatoes", T2)]);
    expect_files(&w.dst, &[("existing", b"potato", T1)]);
}

/// Move deletes the source also when the destination was already equal (§2).
fn move_deletes_equal_source(p: Pair) {
    let w = World::new(p);
    w.src.write("same", b"same", T1);
    w.dst.write("same", b"same", T1);
    if read_only_move_refused(&w) {
        return;
    }
    let (r, ev) = w.run(Mode::Move, |_| {});
    assert!(r.error.is_none());
    assert_eq!(transfers(&ev), 0);
    assert!(w.src.files().is_empty());
}

/// S46/S47: overlapping roots are refused (fatal, exit 7) unless a filter excludes the overlap.
fn s46_overlap(p: Pair) {
    if p != Pair::LocalLocal {
        return; // overlap needs both sides on the same backend
    }
    let w = World::new(p);
    w.src.write("a", b"a", T1);
    let inner = w.src.local_root.as_ref().unwrap().join("inner");
    std::fs::create_dir_all(&inner).unwrap();
    let inner_side = Side {
        remote: Arc::new(cloudsync::remote::local::LocalRemote::new(inner, Default::default(), None)),
        local_root: Some(w.src.local_root.as_ref().unwrap().join("inner")),
    };
    for (src, dst) in [(w.src.remote.as_ref(), &inner_side), (w.src.remote.as_ref(), &w.src)] {
        let (r, _) = run_between(src, dst, Mode::Sync, |_| {});
        let e = r.error.as_ref().expect("overlap must fail");
        assert_eq!(e.kind(), Kind::Fatal);
        assert_eq!(r.exit_code(), 7);
        assert!(e.to_string().contains("overlapping remotes"));
    }
    let mut b = FilterBuilder::new();
    b.add_exclude("/inner/**").unwrap();
    let filter = Arc::new(b.build().unwrap());
    let (r, _) = run_between(w.src.remote.as_ref(), &inner_side, Mode::Copy, |o| o.filter = filter);
    assert!(r.error.is_none(), "{:?}", r.error);
}

/// S52: names in different Unicode normalisation forms match; the destination keeps its
/// own spelling and is updated in place.
fn s52_utf_norm(p: Pair) {
    let w = World::new(p);
    let nfc = "Test\u{ea}\u{e9}";
    let nfd = "Teste\u{302}e\u{301}";
    w.src.write(nfc, b"new content", T2);
    w.dst.write(nfd, b"old", T1);
    let (r, ev) = w.run(Mode::Sync, |_| {});
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(transfers(&ev), 1);
    assert_eq!(count(&ev, FileAction::Deleted), 0);
    let files = w.dst.files();
    assert_eq!(files.keys().collect::<Vec<_>>(), vec![nfd]);
    assert_eq!(files[nfd].0, b"new content");
}

/// S57 (zero-length): empty files upload and download.
fn s57_zero_length(p: Pair) {
    let w = World::new(p);
    for i in 0..5 {
        w.src.write(&format!("z{i}"), b"", T1);
    }
    assert!(w.sync().error.is_none());
    let expected: Vec<(String, &[u8], i64)> = (0..5).map(|i| (format!("z{i}"), &b""[..], T1)).collect();
    let expected: Vec<(&str, &[u8], i64)> = expected.iter().map(|(p, c, t)| (p.as_str(), *c, *t)).collect();
    expect_files(&w.dst, &expected);
}

/// S59: a second identical run transfers nothing and says so.
fn s59_nothing_to_transfer(p: Pair) {
    let w = World::new(p);
    w.src.write("sub dir/hello world", b"hello world", T1);
    w.src.write("sub dir2/very/very/deep", b"deep", T2);
    assert!(w.sync().error.is_none());
    let dst_dir_time = w.dst.is_local().then(|| w.dst.dir_mtime("sub dir2"));
    let (r, ev) = w.run(Mode::Sync, |_| {});
    assert!(r.error.is_none());
    assert_eq!(transfers(&ev), 0);
    assert_eq!(count(&ev, FileAction::SetDirModTime), 0);
    if let Some(t) = dst_dir_time {
        assert_eq!(w.dst.dir_mtime("sub dir2"), t);
    }
}

/// O1: --max-delete 2 on 3 dst-only objects: fatal, exactly one remains.
fn o1_max_delete(p: Pair) {
    let w = World::new(p);
    if !w.src.is_local() {
        w.src.write("keep", b"k", T1);
        w.dst.write("keep", b"k", T1);
    } else {
        w.src.mkdir("");
    }
    for n in ["a", "b", "c"] {
        w.dst.write(n, b"x", T1);
    }
    let (r, _) = w.run(Mode::Sync, |o| o.max_delete = Some(2));
    let e = r.error.as_ref().expect("max-delete must fail");
    assert_eq!(e.kind(), Kind::Fatal);
    assert_eq!(r.exit_code(), 7);
    let left: Vec<_> = w.dst.file_paths().into_iter().filter(|p| p != "keep").collect();
    assert_eq!(left.len(), 1);
}

/// TrueNAS rules: `.zfs` is always excluded at any depth; `.zfs_not` is not.
fn truenas_zfs_rules(p: Pair) {
    let w = World::new(p);
    w.src.write(".zfs/snapshot/s1/a", b"a", T1);
    w.src.write("sub/.zfs/g", b"g", T1);
    w.src.write(".zfs_not", b"n", T1);
    w.src.write("office/doc", b"d", T1);
    let filter = Arc::new(cloudsync::engine::Filter::truenas(&[], &[], false).unwrap());
    let (r, _) = w.run(Mode::Sync, |o| o.filter = filter);
    assert!(r.error.is_none());
    assert_eq!(w.dst.file_paths().into_iter().collect::<Vec<_>>(), vec![".zfs_not", "office/doc"]);
}

/// TrueNAS include rules: only the included top-level directories reach the destination.
fn truenas_include_rules(p: Pair) {
    let w = World::new(p);
    for f in ["office/a", "photos/b/c", "other/deep/w", "rootfile"] {
        w.src.write(f, f.as_bytes(), T1);
    }
    let filter =
        Arc::new(cloudsync::engine::Filter::truenas(&[], &["/office/**".into(), "/photos/**".into()], false).unwrap());
    let (r, _) = w.run(Mode::Sync, |o| o.filter = filter);
    assert!(r.error.is_none());
    assert_eq!(w.dst.file_paths().into_iter().collect::<Vec<_>>(), vec!["office/a", "photos/b/c"]);
}

/// Names that are not UTF-8 are transferred byte for byte (and through S3 both ways).
fn non_utf8_names(p: Pair) {
    let w = World::new(p);
    if !w.src.is_local() {
        return;
    }
    let root = w.src.local_root.clone().unwrap();
    let name = std::ffi::OsStr::from_encoded_bytes_unchecked_safe(b"caf\xe9 \xff.txt");
    std::fs::write(root.join(&name), b"latin-1 name").unwrap();
    set_mtime(&root.join(&name), T1);
    let (r, ev) = w.run(Mode::Sync, |_| {});
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(transfers(&ev), 1);
    if !w.dst.is_local() {
        // And back again into a fresh directory.
        let back = w.tmp.path().join("back");
        let back_side = Side {
            remote: Arc::new(cloudsync::remote::local::LocalRemote::new(back.clone(), Default::default(), None)),
            local_root: Some(back.clone()),
        };
        let (r, _) = run_between(w.dst.remote.as_ref(), &back_side, Mode::Copy, |_| {});
        assert!(r.error.is_none());
        assert_eq!(std::fs::read(back.join(&name)).unwrap(), b"latin-1 name");
    } else {
        assert_eq!(std::fs::read(w.dst.local_root.as_ref().unwrap().join(&name)).unwrap(), b"latin-1 name");
    }
}

trait OsStrBytes {
    fn from_encoded_bytes_unchecked_safe(b: &[u8]) -> std::ffi::OsString;
}
impl OsStrBytes for std::ffi::OsStr {
    fn from_encoded_bytes_unchecked_safe(b: &[u8]) -> std::ffi::OsString {
        use std::os::unix::ffi::OsStrExt;
        std::ffi::OsStr::from_bytes(b).to_os_string()
    }
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        mod local_to_local { $( #[test] fn $name() { super::$name(super::Pair::LocalLocal) } )* }
        mod local_to_s3 { $( #[test] fn $name() { super::$name(super::Pair::LocalS3) } )* }
        mod s3_to_local { $( #[test] fn $name() { super::$name(super::Pair::S3Local) } )* }
        mod local_to_crypt_local { $( #[test] fn $name() { super::$name(super::Pair::LocalCryptLocal) } )* }
        mod local_to_crypt_s3 { $( #[test] fn $name() { super::$name(super::Pair::LocalCryptS3) } )* }
        mod crypt_s3_to_local { $( #[test] fn $name() { super::$name(super::Pair::CryptS3Local) } )* }
        mod local_to_azure { $( #[test] fn $name() { super::$name(super::Pair::LocalAzure) } )* }
        mod azure_to_local { $( #[test] fn $name() { super::$name(super::Pair::AzureLocal) } )* }
        mod local_to_b2 { $( #[test] fn $name() { super::$name(super::Pair::LocalB2) } )* }
        mod b2_to_local { $( #[test] fn $name() { super::$name(super::Pair::B2Local) } )* }
        mod local_to_gcs { $( #[test] fn $name() { super::$name(super::Pair::LocalGcs) } )* }
        mod gcs_to_local { $( #[test] fn $name() { super::$name(super::Pair::GcsLocal) } )* }
        mod local_to_swift { $( #[test] fn $name() { super::$name(super::Pair::LocalSwift) } )* }
        mod swift_to_local { $( #[test] fn $name() { super::$name(super::Pair::SwiftLocal) } )* }
        mod local_to_webdav { $( #[test] fn $name() { super::$name(super::Pair::LocalWebdav) } )* }
        mod webdav_to_local { $( #[test] fn $name() { super::$name(super::Pair::WebdavLocal) } )* }
        mod local_to_webdav_other { $( #[test] fn $name() { super::$name(super::Pair::LocalWebdavOther) } )* }
        mod local_to_ftp { $( #[test] fn $name() { super::$name(super::Pair::LocalFtp) } )* }
        mod ftp_to_local { $( #[test] fn $name() { super::$name(super::Pair::FtpLocal) } )* }
        mod local_to_ftps { $( #[test] fn $name() { super::$name(super::Pair::LocalFtpTls) } )* }
        mod local_to_ftp_no_times { $( #[test] fn $name() { super::$name(super::Pair::LocalFtpNoTimes) } )* }
        mod local_to_sftp { $( #[test] fn $name() { super::$name(super::Pair::LocalSftp) } )* }
        mod sftp_to_local { $( #[test] fn $name() { super::$name(super::Pair::SftpLocal) } )* }
        mod http_to_local { $( #[test] fn $name() { super::$name(super::Pair::HttpLocal) } )* }
        mod local_to_crypt_azure { $( #[test] fn $name() { super::$name(super::Pair::LocalCryptAzure) } )* }
    };
}

cases!(
    s01_copy_dry_run,
    s02_copy,
    s03_copy_missing_source,
    s09_s10_empty_dirs,
    s11_move_empty_dirs,
    s13_delayed_dir_modtimes,
    s14_no_update_dir_modtime,
    s16_copy_over_self,
    s17_move_over_self,
    s18_copy_after_delete,
    s19_copy_redownload,
    s20_checksum,
    s21_size_only,
    s22_ignore_size,
    s23_ignore_times,
    s24_ignore_existing,
    s26_modtime_only_change,
    s27_no_update_modtime,
    s28_doesnt_update_modtime,
    s29_after_adding_a_file,
    s30_size_change_only,
    s31_contents_change_only,
    s32_remove_add_dry_run,
    s33_remove_add,
    s34_remove_add_subdirs,
    s35_errors_block_deletions,
    s36_copy_never_deletes,
    s37_exclude_neither_copied_nor_deleted,
    s39_update_older,
    s42_move_delete_empty_src_dirs,
    s43_move_ignore_existing,
    move_deletes_equal_source,
    s46_overlap,
    s52_utf_norm,
    s57_zero_length,
    s59_nothing_to_transfer,
    o1_max_delete,
    truenas_zfs_rules,
    truenas_include_rules,
    non_utf8_names,
);
