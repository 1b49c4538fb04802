"""Tests of the Python binding (python/cloudsync.py) against the built library and a real
S3 server (s3s-fs) on loopback.

Run from the repository root:

    CLOUDSYNC_LIBRARY=target/debug/libcloudsync.so python3 -m unittest discover -s python/tests -v

(`cargo test --test python` does exactly that.) s3s-fs comes from scripts/test; without it
every test that needs the server fails with a message saying so.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# The library under test: CLOUDSYNC_LIBRARY, else the debug build of this tree.
if not os.environ.get("CLOUDSYNC_LIBRARY"):
    _built = REPO / "target" / "debug" / "libcloudsync.so"
    if _built.exists():
        os.environ["CLOUDSYNC_LIBRARY"] = str(_built)
# The S3 server is plain HTTP on loopback: a CA bundle from the environment must not apply.
os.environ.pop("AWS_CA_BUNDLE", None)

sys.path.insert(0, str(REPO / "python"))
import cloudsync  # noqa: E402

ACCESS_KEY = "cloudsync-test"
SECRET_KEY = "cloudsync-test-secret-k3y"
BUCKET = "bucket"
MiB = 1024 * 1024


# ------------------------------------------------------------------------ the S3 server


def _find_s3s_fs():
    explicit = os.environ.get("CLOUDSYNC_S3S_FS")
    if explicit:
        return explicit
    found = shutil.which("s3s-fs")
    if found:
        return found
    home = Path.home() / ".cargo" / "bin" / "s3s-fs"
    return str(home) if home.is_file() else None


class S3Server:
    """s3s-fs on a free loopback port, serving a temporary directory (buckets are its
    subdirectories)."""

    def __init__(self):
        binary = _find_s3s_fs()
        if binary is None:
            raise RuntimeError(
                "s3s-fs not found (PATH, ~/.cargo/bin or CLOUDSYNC_S3S_FS): run scripts/test "
                "(it installs it), or `cargo install s3s-fs@0.14.1 --features binary --locked`"
            )
        self.data = tempfile.mkdtemp(prefix="cloudsync-py-s3-")
        for _ in range(20):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            proc = subprocess.Popen(
                [binary, "--host", "127.0.0.1", "--port", str(port), "--access-key", ACCESS_KEY,
                 "--secret-key", SECRET_KEY, self.data],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    self.proc, self.port = proc, port
                    self.endpoint = "http://127.0.0.1:%d" % port
                    return
                except OSError:
                    pass
                if proc.poll() is not None:
                    break  # the port was taken meanwhile: try another
                time.sleep(0.02)
            proc.kill()
            proc.wait()
        shutil.rmtree(self.data, ignore_errors=True)
        raise RuntimeError("s3s-fs did not start")

    def make_bucket(self, name):
        os.makedirs(os.path.join(self.data, name), exist_ok=True)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.data, ignore_errors=True)


_server = None
_server_error = None


def setUpModule():
    global _server, _server_error
    try:
        _server = S3Server()
        _server.make_bucket(BUCKET)
    except Exception as e:  # reported by every test that needs the server
        _server_error = str(e)


def tearDownModule():
    if _server is not None:
        _server.stop()


def server():
    if _server is None:
        raise AssertionError(_server_error or "the S3 server is not running")
    return _server


# ------------------------------------------------------------------------ helpers


def write(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def tree(root):
    """Every file below `root`: relative path -> bytes."""
    root = Path(root)
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def s3_provider(secret=SECRET_KEY):
    return {
        "type": "S3",
        "access_key_id": ACCESS_KEY,
        "secret_access_key": secret,
        "endpoint": server().endpoint,
        "region": "",
        "force_path_style": True,
    }


class StoreCase(unittest.TestCase):
    """A fresh store (with its pool root) per test."""

    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="cloudsync-py-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.pool = self.tmp / "mnt"
        self.data = self.pool / "tank" / "data"
        self.data.mkdir(parents=True)
        self.store = cloudsync.Store(
            self.tmp / "state" / "cloudsync.db",
            self.tmp / "state" / "seed",
            log_dir=self.tmp / "logs",
            pool_root=self.pool,
            require_dataset=False,
        )
        self.addCleanup(self.store.close)


class S3Case(StoreCase):
    """A store with a credential for the S3 server, and a remote folder of its own."""

    def setUp(self):
        server()
        super().setUp()
        self.cred = self.store.create_credential({"name": "s3", "provider": s3_provider()})["id"]
        self.folder = self._testMethodName

    def task_body(self, **extra):
        body = {
            "description": self._testMethodName,
            "path": str(self.data),
            "credentials": self.cred,
            "attributes": {"bucket": BUCKET, "folder": self.folder},
            "direction": "PUSH",
            "transfer_mode": "SYNC",
        }
        body.update(extra)
        return body

    def create_task(self, **extra):
        return self.store.create_task(self.task_body(**extra))["id"]

    def listing(self, folder, **extra):
        args = {"credentials": self.cred, "attributes": {"bucket": BUCKET, "folder": folder}}
        args.update(extra)
        return self.store.list_directory(args)

    def sample_tree(self):
        files = {
            "zero.bin": b"",
            "small.txt": b"alpha",
            "caf\u00e9 \u2615.txt": "non-ASCII name \u00e9\u00e8".encode("utf-8"),
            "sub/kib.bin": os.urandom(1000),
            "sub/deeper/medium.bin": os.urandom(300_000),
            "sub/deeper/large.bin": os.urandom(2 * MiB + 17),
        }
        for name, content in files.items():
            write(self.data / name, content)
        return files

    def slow_task(self, **extra):
        """A task pushing 16 MiB at 1 MiB/s: 16 s unless aborted."""
        slow = self.pool / "tank" / "slow"
        write(slow / "big.bin", os.urandom(16 * MiB))
        body = self.task_body(
            path=str(slow),
            transfer_mode="COPY",
            bwlimit=[{"time": "00:00", "bandwidth": 1048576}],
        )
        body.update(extra)
        return self.store.create_task(body)["id"]


# ------------------------------------------------------------------------ no server needed


class ModuleTests(unittest.TestCase):
    def test_version(self):
        info = cloudsync.library_version_info()
        self.assertEqual(cloudsync.library_version(), "%d.%d.%d" % info)
        self.assertEqual(info[:2], tuple(int(x) for x in cloudsync.__version__.split(".")[:2]))
        header = (REPO / "include" / "cloudsync.h").read_text()
        defined = tuple(
            int(re.search(r"#define CLOUDSYNC_VERSION_%s (\d+)" % part, header).group(1))
            for part in ("MAJOR", "MINOR", "PATCH")
        )
        self.assertEqual(info, defined, "the library and include/cloudsync.h disagree")
        self.assertTrue(cloudsync.library_path())

    def test_result_codes_mirror_the_header(self):
        header = (REPO / "include" / "cloudsync.h").read_text()
        enum = re.search(r"enum cloudsync_result\b.*?\{(.*?)\};", header, re.S).group(1)
        codes = {name: int(value) for name, value in re.findall(r"CLOUDSYNC_(\w+) = (\d+),", enum)}
        self.assertEqual(codes, {r.name: r.value for r in cloudsync.Result})
        for r in cloudsync.Result:
            self.assertNotEqual(cloudsync.result_text(r), "unknown result code", r)
            self.assertEqual(r.c_name, "CLOUDSYNC_" + r.name)
        self.assertEqual(cloudsync.result_text(12345), "unknown result code")
        self.assertEqual(cloudsync.result_text(-1), "unknown result code")
        cb = re.search(r"enum cloudsync_callback_result\b.*?\{(.*?)\};", header, re.S).group(1)
        self.assertEqual(
            dict(re.findall(r"CLOUDSYNC_(\w+) = (\d+),", cb)),
            {r.name: str(r.value) for r in cloudsync.CallbackResult},
        )

    def test_providers(self):
        listed = cloudsync.providers()
        names = [p["name"] for p in listed]
        self.assertIn("S3", names)
        self.assertIn("DROPBOX", names)
        s3 = next(p for p in listed if p["name"] == "S3")
        self.assertTrue(s3["buckets"])
        fields = {f["property"]: f["schema"] for f in s3["credentials_schema"]}
        self.assertTrue(fields["access_key_id"]["_required_"])
        self.assertTrue(fields["secret_access_key"]["_secret_"])
        self.assertIn("bucket", [f["property"] for f in s3["task_schema"]])
        dropbox = next(p for p in listed if p["name"] == "DROPBOX")
        self.assertFalse(dropbox["buckets"])

    def test_exception_classes(self):
        for code in cloudsync.Result:
            if code == cloudsync.Result.OK:
                continue
            cls = cloudsync.ERRORS.get(code, cloudsync.CloudsyncError)
            e = cls("boom", code, path=b"a/b", details=[["f", "m"]])
            self.assertIsInstance(e, cloudsync.CloudsyncError)
            self.assertEqual((e.code, e.name, e.message, str(e)), (code, code.c_name, "boom", "boom"))
        self.assertIs(cloudsync.ERRORS[cloudsync.Result.INVALID_ARGUMENT], cloudsync.ValidationError)
        self.assertTrue(issubclass(cloudsync.ValidationError, ValueError))
        self.assertTrue(issubclass(cloudsync.NotFoundError, LookupError))
        self.assertTrue(issubclass(cloudsync.AuthError, PermissionError))
        self.assertTrue(issubclass(cloudsync.NetworkError, ConnectionError))
        self.assertTrue(issubclass(cloudsync.DirNotFoundError, cloudsync.NotFoundError))
        self.assertTrue(issubclass(cloudsync.OutOfRangeError, IndexError))
        unknown = cloudsync.CloudsyncError("x", 999)
        self.assertEqual((unknown.code, unknown.name), (999, "CLOUDSYNC_UNKNOWN_999"))

    def test_verify_without_a_store_reports_an_unreachable_remote(self):
        v = cloudsync.verify_credential(
            {"type": "S3", "access_key_id": "a", "secret_access_key": "s3cr3t-never-shown",
             "endpoint": "http://127.0.0.1:9", "force_path_style": True}
        )
        self.assertIs(v["valid"], False)
        self.assertIn("127.0.0.1:9", v["error"])
        self.assertNotIn("s3cr3t-never-shown", str(v))


class StoreTests(StoreCase):
    def test_lifecycle(self):
        self.assertTrue(self.store.secrets_available)
        self.assertEqual(os.stat(self.tmp / "state" / "seed").st_mode & 0o777, 0o600)
        # bytes and str paths; a second handle on the same database sees the same data
        with cloudsync.Store(
            os.fsencode(self.tmp / "state" / "cloudsync.db"), str(self.tmp / "state" / "seed")
        ) as other:
            self.assertEqual(other.list_tasks(), [])
            self.assertEqual(other.list_credentials(), [])
        self.assertTrue(other.closed)
        other.close()  # idempotent
        with self.assertRaises(ValueError):
            other.list_tasks()
        with self.assertRaises(ValueError):
            other.secrets_available
        self.assertIn("closed", repr(other))

    def test_bad_paths(self):
        with self.assertRaises(ValueError):
            cloudsync.Store(b"db\0x", self.tmp / "seed")
        with self.assertRaises(cloudsync.ValidationError) as cm:
            cloudsync.Store(b"", self.tmp / "seed")
        self.assertEqual(cm.exception.code, cloudsync.Result.INVALID_ARGUMENT)
        with self.assertRaises(cloudsync.ValidationError):
            self.store.set_log_dir("")
        with self.assertRaises(TypeError):
            cloudsync.Store(None, self.tmp / "seed")

    def test_errors(self):
        # A validation error carries [field, message] details.
        with self.assertRaises(cloudsync.ValidationError) as cm:
            self.store.create_credential({"name": "x", "provider": {"type": "S3"}})
        e = cm.exception
        self.assertIsInstance(e, ValueError)
        self.assertEqual((e.code, e.name), (cloudsync.Result.INVALID_ARGUMENT, "CLOUDSYNC_INVALID_ARGUMENT"))
        fields = [f for f, _ in e.details]
        self.assertTrue(any(f.endswith("provider.access_key_id") for f in fields), e.details)
        self.assertTrue(all(isinstance(m, str) and m for _, m in e.details), e.details)
        self.assertIn("access_key_id", e.message)
        self.assertEqual((e.path, e.http_status, e.retryable, e.outcome), (None, 0, False, None))
        # A body that is not an object, and JSON text given directly.
        with self.assertRaises(cloudsync.ValidationError):
            self.store.create_task([1, 2])
        with self.assertRaises(cloudsync.InvalidInputError) as cm:
            self.store.create_task("{not json")
        self.assertEqual(cm.exception.name, "CLOUDSYNC_INVALID_JSON")
        # Missing things.
        for call in (
            lambda: self.store.get_task(424242),
            lambda: self.store.update_task(424242, {"description": "x"}),
            lambda: self.store.delete_task(424242),
            lambda: self.store.abort(424242),
            lambda: self.store.get_credential(424242),
            lambda: self.store.delete_credential(424242),
            lambda: self.store.verify_credential_id(424242),
            lambda: self.store.list_buckets(424242),
            lambda: self.store.create_bucket(424242, "b"),
            lambda: self.store.job(999999),
            lambda: self.store.job_log(999999),
            lambda: self.store.abort_job(999999),
        ):
            with self.assertRaises(cloudsync.NotFoundError) as cm:
                call()
            self.assertEqual(cm.exception.name, "CLOUDSYNC_NOT_FOUND")
            self.assertIsInstance(cm.exception, LookupError)
        # Running a task that does not exist: the header promises a code other than
        # JOB_FAILED "when the job could not be started", but the library creates a job
        # record for the missing task and fails that job (reported as a C API problem).
        with self.assertRaises((cloudsync.NotFoundError, cloudsync.JobFailedError)) as cm:
            self.store.run(424242)
        self.assertIn("does not exist", cm.exception.message)
        # Python-side argument checks.
        with self.assertRaises(TypeError):
            self.store.get_task("1")
        with self.assertRaises(TypeError):
            self.store.get_task(True)
        with self.assertRaises(ValueError):
            self.store.get_task(2**63)
        with self.assertRaises(ValueError):
            self.store.jobs(limit=-1)
        with self.assertRaises(TypeError):
            self.store.run(1, progress=42)
        # INVALID_UTF8 cannot be produced from str arguments (they are always encoded as
        # UTF-8; lone surrogates fail in Python before the call).
        with self.assertRaises(UnicodeEncodeError):
            self.store.create_credential({"name": "\udcff", "provider": {"type": "S3"}})

    def test_task_validation_details(self):
        with self.assertRaises(cloudsync.ValidationError) as cm:
            self.store.validate_task({"path": "/etc"})
        fields = dict(cm.exception.details)
        self.assertEqual(fields.get("cloud_sync_create.credentials"), "Field required", fields)
        self.assertIn("cloud_sync_create.direction", fields)


# ------------------------------------------------------------------------ with the S3 server


class CredentialTests(S3Case):
    def test_crud_and_redaction(self):
        secret = "another-SECRET-value-42"
        created = self.store.create_credential({"name": "other", "provider": s3_provider(secret)})
        cid = created["id"]
        self.assertEqual(created["provider"]["secret_access_key"], secret)  # the caller gave it
        got = self.store.get_credential(cid)
        self.assertEqual((got["id"], got["name"], got["provider"]["type"]), (cid, "other", "S3"))
        self.assertNotIn(secret, repr(got))
        self.assertNotIn(SECRET_KEY, repr(self.store.get_credential(self.cred)))
        listed = self.store.list_credentials()
        self.assertEqual(sorted(c["name"] for c in listed), ["other", "s3"])
        self.assertNotIn(secret, repr(listed))
        self.assertNotIn(SECRET_KEY, repr(listed))
        self.assertEqual(self.store.get_credential(cid, reveal=True)["provider"]["secret_access_key"], secret)
        self.assertIn(secret, repr(self.store.list_credentials(reveal=True)))
        # duplicate names are refused
        with self.assertRaises(cloudsync.ValidationError):
            self.store.create_credential({"name": "other", "provider": s3_provider()})
        # update
        renamed = self.store.update_credential(cid, {"name": "renamed"})
        self.assertEqual(renamed["name"], "renamed")
        self.assertEqual(self.store.get_credential(cid)["name"], "renamed")
        # verify: a stored one with the wrong secret, a body, the good one
        bad = self.store.verify_credential_id(cid)
        self.assertIs(bad["valid"], False, bad)
        self.assertNotIn(secret, repr(bad))
        self.assertIs(self.store.verify_credential(s3_provider())["valid"], True)
        self.assertIs(self.store.verify_credential_id(self.cred)["valid"], True)
        self.assertIs(cloudsync.verify_credential(s3_provider())["valid"], True)
        self.store.update_credential(cid, {"provider": s3_provider()})
        self.assertIs(self.store.verify_credential_id(cid)["valid"], True)
        # delete
        self.store.delete_credential(cid)
        with self.assertRaises(cloudsync.NotFoundError):
            self.store.get_credential(cid)
        self.assertEqual([c["name"] for c in self.store.list_credentials()], ["s3"])

    def test_keychain(self):
        pair = cloudsync.generate_keypair()
        self.assertTrue(pair["private_key"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----"))
        created = self.store.create_keypair({"name": "nas", "type": "SSH_KEY_PAIR", "attributes": pair})
        self.assertEqual(created["attributes"]["public_key"], pair["public_key"])
        self.assertNotIn("PRIVATE KEY", repr(created))
        self.assertNotIn("PRIVATE KEY", repr(self.store.list_keypairs()))
        self.assertIn(pair["private_key"], repr(self.store.list_keypairs(reveal=True)).replace("\\n", "\n"))
        with self.assertRaises(cloudsync.ValidationError):
            self.store.create_keypair({"name": "bad", "type": "SSH_KEY_PAIR", "attributes": {"private_key": "x"}})
        self.store.delete_keypair(created["id"])
        self.assertEqual(self.store.list_keypairs(), [])
        with self.assertRaises(cloudsync.NotFoundError):
            self.store.delete_keypair(created["id"])

    def test_create_bucket_is_storj_only(self):
        # An S3 credential: TrueNAS's text, and no bucket appears on the server.
        with self.assertRaises(cloudsync.InvalidInputError) as cm:
            self.store.create_bucket(self.cred, "made-by-python")
        self.assertEqual(str(cm.exception).split(" (")[0].rstrip("."), "This provider can't create buckets")
        self.assertNotIn("made-by-python", [b.name for b in self.store.list_buckets(self.cred)])

    def test_list_buckets(self):
        server().make_bucket("second-bucket")
        buckets = self.store.list_buckets(self.cred)
        names = [b.name for b in buckets]
        self.assertIn(BUCKET, names)
        self.assertIn("second-bucket", names)
        for b in buckets:
            self.assertIsInstance(b, cloudsync.Entry)
            self.assertTrue(b.is_dir)
            self.assertIsNone(b.size)
            self.assertEqual(b.name_bytes, b.name.encode())
            # the bucket's creation date, as an aware UTC datetime
            self.assertIsInstance(b.mtime, datetime)
            self.assertEqual(b.mtime.tzinfo, timezone.utc)
            self.assertLess(abs(b.mtime.timestamp() - b.mtime_ns / 1e9), 1e-3)
            self.assertLess(abs(b.mtime.timestamp() - time.time()), 3600)

    def test_delete_refused_while_a_task_uses_it(self):
        tid = self.create_task()
        with self.assertRaises(cloudsync.ValidationError) as cm:
            self.store.delete_credential(self.cred)
        self.assertEqual(cm.exception.code, cloudsync.Result.INVALID_ARGUMENT)
        self.store.get_credential(self.cred)  # still there
        self.store.delete_task(tid)
        self.store.delete_credential(self.cred)
        self.assertEqual(self.store.list_credentials(), [])


class TaskTests(S3Case):
    def test_create_validate_update_get_list(self):
        body = self.task_body(schedule={"minute": "0", "hour": "3"})
        normalized = self.store.validate_task(body)
        for key in ("transfers", "follow_symlinks", "bwlimit", "encryption", "enabled"):
            self.assertIn(key, normalized)
        self.assertEqual(self.store.list_tasks(), [], "validate stores nothing")
        task = self.store.create_task(body)
        tid = task["id"]
        self.assertIsInstance(tid, int)
        self.assertEqual(task["description"], "test_create_validate_update_get_list")
        self.assertEqual(task["direction"], "PUSH")
        self.assertIsNone(task["job"])
        updated = self.store.update_task(tid, {"description": "nightly", "transfer_mode": "COPY"})
        self.assertEqual((updated["description"], updated["transfer_mode"]), ("nightly", "COPY"))
        self.assertEqual(updated["attributes"]["folder"], self.folder, "a shallow merge")
        with self.assertRaises(cloudsync.ValidationError) as cm:
            self.store.validate_task(self.task_body(path="/etc"))
        self.assertEqual(
            dict(cm.exception.details).get("cloud_sync_create.path"),
            "The path must reside within a pool mount point",
            cm.exception.details,
        )
        with self.assertRaises(cloudsync.ValidationError) as cm:
            self.store.update_task(tid, {"transfers": 0})
        self.assertTrue(any("transfers" in f for f, _ in cm.exception.details), cm.exception.details)
        got = self.store.get_task(tid)
        self.assertEqual(got["description"], "nightly")
        self.assertEqual(got["credentials"]["id"] if isinstance(got["credentials"], dict) else got["credentials"], self.cred)
        self.assertEqual([t["id"] for t in self.store.list_tasks()], [tid])
        # os.PathLike values in bodies are accepted
        other = self.store.create_task(self.task_body(path=self.data, description="pathlike"))
        self.assertEqual(other["path"], str(self.data))
        self.store.delete_task(other["id"])
        self.store.delete_task(tid)
        self.assertEqual(self.store.list_tasks(), [])
        with self.assertRaises(cloudsync.NotFoundError):
            self.store.delete_task(tid)


    def test_verify_task_and_config_export_import(self):
        report = self.store.verify_task(self.task_body())
        self.assertTrue(report["valid"], report)
        pull = self.store.verify_task(self.task_body(direction="PULL", attributes={"bucket": BUCKET, "folder": "missing"}))
        self.assertFalse(pull["valid"])
        self.assertIn("Directory does not exist", str(pull["errors"]))
        self.store.create_task(self.task_body())
        export = self.store.export_config(with_seed=True)
        self.assertIn("seed", export)
        other_dir = self.tmp / "other"
        with cloudsync.Store(other_dir / "db", other_dir / "seed", pool_root=self.pool, require_dataset=False) as other:
            result = other.import_config(export)
            self.assertTrue(result["secrets"], result)
            self.assertEqual(len(other.list_tasks()), 1)
            with self.assertRaises(cloudsync.ValidationError):
                other.import_config({"format": "something else"})


class RunTests(S3Case):
    def test_push_with_callbacks_then_list_directory(self):
        files = self.sample_tree()
        tid = self.create_task()
        progress, lines = [], []

        def on_progress(p):
            self.assertIsInstance(p, cloudsync.Progress)
            progress.append(p)
            return None

        outcome = self.store.run(tid, progress=on_progress, log=lambda job_id, line: lines.append((job_id, line)))
        self.assertIsInstance(outcome, cloudsync.JobOutcome)
        self.assertEqual(outcome.state, "SUCCESS", outcome)
        self.assertTrue(outcome.succeeded)
        self.assertIsNone(outcome.error)
        self.assertIn("Copied (new)", outcome.logs_excerpt)
        self.assertTrue(lines, "the log callback got no line")
        self.assertTrue(all(j == outcome.job_id and isinstance(l, str) for j, l in lines))
        self.assertTrue(any("Copied (new)" in l for _, l in lines), lines)
        for p in progress:
            self.assertEqual(p.job_id, outcome.job_id)
            self.assertTrue(0 <= p.percent <= 100)
            self.assertIsInstance(p.description, str)
        self.assertEqual([p.percent for p in progress], sorted(p.percent for p in progress))
        # the job, as stored
        job = self.store.job(outcome.job_id)
        self.assertEqual((job["state"], job["task_id"]), ("SUCCESS", tid))
        self.assertIn(outcome.job_id, [j["id"] for j in self.store.jobs(tid)])
        self.assertIn(outcome.job_id, [j["id"] for j in self.store.jobs()])
        self.assertEqual(len(self.store.jobs(tid, limit=1)), 1)
        log = self.store.job_log(outcome.job_id)
        self.assertIn("Copied (new)", log)
        self.assertFalse(self.store.abort_job(outcome.job_id), "a finished job is not live")
        self.assertFalse(self.store.abort(tid), "no job to abort")
        self.assertEqual(self.store.get_task(tid)["job"]["state"], "SUCCESS")
        # the objects, through list_directory
        top = {e.name: e for e in self.listing(self.folder)}
        self.assertEqual(sorted(top), sorted(["zero.bin", "small.txt", "caf\u00e9 \u2615.txt", "sub"]))
        self.assertEqual([e.name for e in self.listing(self.folder)], sorted(top), "sorted by name")
        self.assertTrue(top["sub"].is_dir)
        self.assertIsNone(top["sub"].size)
        for name in ("zero.bin", "small.txt", "caf\u00e9 \u2615.txt"):
            e = top[name]
            self.assertFalse(e.is_dir)
            self.assertEqual(e.size, len(files[name]), name)
            self.assertEqual(e.name_bytes, name.encode("utf-8"))
            # S3 listings carry no modification time here (see the C API notes); when
            # one is given it must agree with mtime_ns.
            if e.mtime is not None:
                self.assertEqual(e.mtime.tzinfo, timezone.utc)
                self.assertLess(abs(e.mtime.timestamp() - e.mtime_ns / 1e9), 1e-3)
            else:
                self.assertIsNone(e.mtime_ns)
        deeper = {e.name: e.size for e in self.listing(self.folder + "/sub/deeper")}
        self.assertEqual(deeper, {"medium.bin": 300_000, "large.bin": 2 * MiB + 17})
        self.assertEqual(self.listing(self.folder + "/nothing-here"), [])

    def test_pull_through_restore(self):
        files = self.sample_tree()
        push = self.create_task()
        self.assertEqual(self.store.run(push).state, "SUCCESS")
        back = self.pool / "tank" / "restored"
        back.mkdir()
        restore = self.store.restore_task(
            push, {"description": "back", "transfer_mode": "COPY", "path": str(back)}
        )
        self.assertEqual((restore["direction"], restore["enabled"]), ("PULL", False))
        outcome = self.store.run(restore["id"])
        self.assertEqual(outcome.state, "SUCCESS", outcome)
        self.assertEqual(tree(back), files)
        self.assertEqual(tree(back), tree(self.data))

    def test_failed_job_raises_one_sentence_with_its_fields(self):
        # A PULL from a folder that does not exist: the job fails before touching anything.
        tid = self.create_task(direction="PULL", attributes={"bucket": BUCKET, "folder": "no-such-folder"})
        with self.assertRaises(cloudsync.JobFailedError) as cm:
            self.store.run(tid)
        e = cm.exception
        self.assertEqual(e.message, "Directory does not exist [s3:%s/no-such-folder]" % BUCKET)
        self.assertEqual((e.provider, e.remote), ("S3", "s3:%s/no-such-folder" % BUCKET))
        self.assertEqual((e.details["kind"], e.exit_code), ("dir_not_found", 3), e.details)
        self.assertEqual(e.outcome.state, "FAILED")
        self.assertEqual(self.store.job(e.outcome.job_id)["error_details"]["exit_code"], 3)

    def test_dry_run_changes_nothing(self):
        self.sample_tree()
        tid = self.create_task()
        outcome = self.store.run(tid, dry_run=True)
        self.assertEqual(outcome.state, "SUCCESS")
        self.assertTrue(self.store.job(outcome.job_id)["dry_run"])
        self.assertEqual(self.listing(self.folder), [])

    def test_cancel_from_the_progress_callback(self):
        tid = self.slow_task()
        calls = []

        def on_progress(p):
            calls.append(p)
            return False

        t0 = time.monotonic()
        with self.assertRaises(cloudsync.AbortedError) as cm:
            self.store.run(tid, progress=on_progress)
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, 8, "the abort took %.1f s" % elapsed)
        self.assertGreaterEqual(len(calls), 1)
        e = cm.exception
        self.assertEqual(e.name, "CLOUDSYNC_ABORTED")
        self.assertEqual(e.outcome.state, "ABORTED")
        self.assertEqual(self.store.job(e.outcome.job_id)["state"], "ABORTED")
        first = calls[0]
        self.assertEqual(first.job_id, e.outcome.job_id)
        self.assertIn(first.bytes_total, (0, 16 * MiB))
        self.assertLessEqual(first.bytes_done, 16 * MiB)
        self.assertLessEqual(first.files_total, 1)
        # The first call is the first step, as TrueNAS describes it; the transfer's
        # calls describe bytes.
        self.assertTrue(first.description.startswith("Locking local path '"), first.description)
        self.assertTrue(all("MiB" in c.description for c in calls if not c.description.startswith(("Locking", "Starting"))))
        self.assertNotIn("big.bin", [x.name for x in self.listing(self.folder)])
        # Store.ABORT and StopIteration abort as well
        for cb in (lambda p: cloudsync.Store.ABORT, lambda p: next(iter(()))):
            with self.assertRaises(cloudsync.AbortedError):
                self.store.run(tid, progress=cb)

    def test_an_exception_in_the_progress_callback_aborts_and_is_reraised(self):
        tid = self.slow_task()

        class Boom(Exception):
            pass

        def on_progress(p):
            raise Boom("from the callback")

        t0 = time.monotonic()
        with self.assertRaises(Boom):
            self.store.run(tid, progress=on_progress)
        self.assertLess(time.monotonic() - t0, 8)
        job = self.store.jobs(tid, limit=1)[0]
        self.assertEqual(job["state"], "ABORTED")
        # the store still works
        self.assertEqual(self.store.get_task(tid)["job"]["state"], "ABORTED")

    def test_an_exception_in_the_log_callback_aborts_and_is_reraised(self):
        # The first log line is the pre-script's (locking and starting are progress steps).
        tid = self.slow_task(pre_script="echo about to push")
        lines = []

        def on_log(job_id, line):
            lines.append(line)
            raise KeyError("log callback")

        t0 = time.monotonic()
        with self.assertRaises(KeyError):
            self.store.run(tid, log=on_log)
        self.assertLess(time.monotonic() - t0, 8)
        self.assertEqual(len(lines), 1, "no more log calls after the failure")
        self.assertEqual(self.store.jobs(tid, limit=1)[0]["state"], "ABORTED", self.store.jobs(tid))

    def test_abort_from_another_thread(self):
        tid = self.slow_task()
        seen = {}

        def aborter():
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                jobs = self.store.jobs(tid, limit=1)
                if jobs and jobs[0]["state"] == "RUNNING":
                    seen["aborted"] = self.store.abort(tid)
                    return
                time.sleep(0.05)

        t = threading.Thread(target=aborter)
        t.start()
        t0 = time.monotonic()
        try:
            with self.assertRaises(cloudsync.AbortedError) as cm:
                self.store.run(tid)
        finally:
            t.join(30)
        self.assertLess(time.monotonic() - t0, 8)
        self.assertIs(seen.get("aborted"), True)
        self.assertEqual(cm.exception.outcome.state, "ABORTED")
        self.assertEqual(self.store.job(cm.exception.outcome.job_id)["state"], "ABORTED")

    def test_a_second_run_while_one_waits_returns_the_waiting_job(self):
        tid = self.slow_task()
        results = {}

        def run(key):
            try:
                results[key] = self.store.run(tid)
            except cloudsync.CloudsyncError as e:
                results[key] = e

        def wait_for(state):
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                found = [j for j in self.store.jobs(tid) if j["state"] == state]
                if found:
                    return found[0]
                time.sleep(0.05)
            self.fail("no %s job" % state)

        first = threading.Thread(target=run, args=("first",))
        second = threading.Thread(target=run, args=("second",))
        first.start()
        try:
            wait_for("RUNNING")
            second.start()
            waiting = wait_for("WAITING")
            outcome = self.store.run(tid)
            self.assertEqual((outcome.state, outcome.job_id), ("WAITING", waiting["id"]))
        finally:
            deadline = time.monotonic() + 30
            while (first.is_alive() or second.is_alive()) and time.monotonic() < deadline:
                try:
                    self.store.abort(tid)
                except cloudsync.CloudsyncError:
                    pass
                time.sleep(0.1)
            first.join(1)
            second.join(1)
        self.assertFalse(first.is_alive() or second.is_alive(), "runs did not end")
        self.assertIsInstance(results["first"], cloudsync.AbortedError)
        self.assertIsInstance(results["second"], cloudsync.AbortedError)

    def test_run_onetime(self):
        files = self.sample_tree()
        lines = []
        outcome = self.store.run_onetime(
            self.task_body(transfer_mode="COPY"), log=lambda j, l: lines.append(l)
        )
        self.assertEqual(outcome.state, "SUCCESS", outcome)
        self.assertTrue(lines)
        self.assertEqual(self.store.list_tasks(), [], "a one-time run stores no task")
        self.assertEqual(
            {e.name for e in self.listing(self.folder)},
            {"zero.bin", "small.txt", "caf\u00e9 \u2615.txt", "sub"},
        )
        self.assertEqual(self.store.job(outcome.job_id)["state"], "SUCCESS")
        # a failing job: the remote folder of a PULL does not exist
        back = self.pool / "tank" / "back"
        back.mkdir()
        with self.assertRaises(cloudsync.JobFailedError) as cm:
            self.store.run_onetime(
                self.task_body(path=str(back), direction="PULL", transfer_mode="COPY",
                               attributes={"bucket": BUCKET, "folder": "does-not-exist"})
            )
        e = cm.exception
        self.assertIn("does not exist", e.message)
        self.assertEqual(e.provider, "S3")
        self.assertEqual(e.outcome.state, "FAILED")
        self.assertEqual(e.outcome.error, e.message)
        self.assertEqual(tree(back), {})
        # an invalid body fails before any job
        with self.assertRaises(cloudsync.ValidationError):
            self.store.run_onetime({"path": 5})
        self.assertEqual(len(files), 6)

    def test_progress_moves_while_one_large_file_uploads(self):
        write(self.data / "one.bin", os.urandom(3 * MiB))
        # 1 MiB/s: about three seconds, so progress is reported midway.
        tid = self.create_task(bwlimit=[{"time": "00:00", "bandwidth": MiB}])
        seen = []
        outcome = self.store.run(tid, progress=lambda p: seen.append(p.percent))
        self.assertEqual(outcome.state, "SUCCESS", outcome)
        self.assertTrue(any(0 < p < 100 for p in seen), "the percentage stayed put: %r" % seen)
        self.assertEqual(seen, sorted(seen), "never backwards")

    def test_a_running_job_shows_in_its_task_entry(self):
        write(self.data / "slow.bin", os.urandom(2 * MiB))
        tid = self.create_task(bwlimit=[{"time": "00:00", "bandwidth": 256 * 1024}])
        self.assertFalse(self.store.get_task(tid)["locked"])
        runner = threading.Thread(target=lambda: self._run_quietly(tid))
        runner.start()
        try:
            deadline = time.monotonic() + 20
            while self.store.get_task(tid)["job"] is None or self.store.get_task(tid)["job"]["state"] != "RUNNING":
                self.assertLess(time.monotonic(), deadline, "the job never showed as running")
                time.sleep(0.05)
            entry = self.store.get_task(tid)
            self.assertTrue(entry["locked"], "its path is locked while it runs")
            self.assertIn("percent", entry["job"]["progress"])
            self.assertEqual([t["job"]["state"] for t in self.store.list_tasks() if t["id"] == tid], ["RUNNING"])
        finally:
            self.store.abort(tid)
            runner.join(30)
        entry = self.store.get_task(tid)
        self.assertEqual(entry["job"]["state"], "ABORTED")
        self.assertFalse(entry["locked"])

    def _run_quietly(self, tid):
        try:
            self.store.run(tid)
        except cloudsync.CloudsyncError:
            pass

    def test_ctrl_c_during_a_run_aborts_the_job(self):
        import _thread
        import signal

        # Python leaves SIGINT alone when it starts with SIGINT ignored (a shell's
        # background job), and interrupt_main() then does nothing: install the handler an
        # interactive Python has.
        self.addCleanup(signal.signal, signal.SIGINT, signal.signal(signal.SIGINT, signal.default_int_handler))

        write(self.data / "slow.bin", os.urandom(4 * MiB))
        # 256 KiB/s: 16 s if nothing stops it.
        tid = self.create_task(bwlimit=[{"time": "00:00", "bandwidth": 256 * 1024}])
        timer = threading.Timer(1.5, _thread.interrupt_main)
        timer.start()
        started = time.monotonic()
        with self.assertRaises(KeyboardInterrupt):
            self.store.run(tid)
        self.assertLess(time.monotonic() - started, 5, "the job was not aborted promptly")
        self.assertEqual(self.store.jobs(tid, limit=1)[0]["state"], "ABORTED", self.store.jobs(tid))

    def test_run_onetime_refuses_scripts(self):
        self.sample_tree()
        marker = self.pool / "tank" / "ran"
        jobs_before = len(self.store.jobs())
        for script in ("pre_script", "post_script"):
            body = self.task_body(transfer_mode="COPY", **{script: "#!/bin/sh\ntouch %s\n" % marker})
            with self.assertRaises(cloudsync.ValidationError) as cm:
                self.store.run_onetime(body)
            self.assertIn(
                ["cloud_sync_sync_onetime.%s" % script,
                 "This option may not be used for onetime cloud sync operations"],
                [list(e) for e in cm.exception.details],
            )
            self.assertFalse(marker.exists(), "the script ran")
        self.assertEqual(len(self.store.jobs()), jobs_before, "no job was started")

    def test_encrypted_task(self):
        self.sample_tree()
        password, salt = "crypt-password-SECRET-1", "crypt-salt-SECRET-2"
        enc = {
            "encryption": True,
            "filename_encryption": True,
            "encryption_password": password,
            "encryption_salt": salt,
        }
        tid = self.create_task(**enc)
        task = self.store.get_task(tid)
        self.assertNotIn(password, repr(task))
        self.assertNotIn(salt, repr(task))
        self.assertEqual(self.store.get_task(tid, reveal=True)["encryption_password"], password)
        outcome = self.store.run(tid)
        self.assertEqual(outcome.state, "SUCCESS", outcome)
        self.assertNotIn(password, outcome.logs_excerpt or "")
        plain = ["caf\u00e9 \u2615.txt", "small.txt", "sub", "zero.bin"]
        self.assertEqual(sorted(e.name for e in self.listing(self.folder, **enc)), plain)
        sizes = {e.name: e.size for e in self.listing(self.folder, **enc)}
        self.assertEqual(sizes["small.txt"], 5, "decrypted size")
        raw = [e.name for e in self.listing(self.folder)]
        self.assertEqual(len(raw), 4)
        self.assertFalse(set(raw) & set(plain), "names are encrypted on the remote: %r" % raw)


if __name__ == "__main__":
    unittest.main()
