"""Python binding of libcloudsync (ctypes; standard library only, Python 3.9+).

Cloud Sync tasks as TrueNAS defines them -- credentials, tasks, jobs, runs with progress
and log callbacks, remote listings -- through the C API declared in
``include/cloudsync.h``. Nothing to compile: the module loads ``libcloudsync`` at import.

Loading the library
    ``CLOUDSYNC_LIBRARY`` (a path to the shared library) when set; otherwise
    ``libcloudsync.so.0`` as the dynamic loader finds it (``LD_LIBRARY_PATH``, the
    ``ldconfig`` cache), then :func:`ctypes.util.find_library`. A library that cannot be
    loaded, or whose major.minor version differs from the one this module was written
    for (:data:`__version__`), raises :class:`ImportError` with the reason.

Quick start::

    import cloudsync

    with cloudsync.Store("/var/lib/cloudsync/cloudsync.db", "/var/lib/cloudsync/seed") as store:
        cred = store.create_credential({"name": "s3", "provider": {
            "type": "S3", "access_key_id": "...", "secret_access_key": "..."}})
        task = store.create_task({"path": "/mnt/tank/data", "credentials": cred["id"],
                                  "attributes": {"bucket": "b", "folder": "nas"},
                                  "direction": "PUSH", "transfer_mode": "SYNC"})
        outcome = store.run(task["id"], progress=lambda p: print(p.percent, p.description))

Conventions
    * Bodies go in as dicts (any JSON-serializable mapping; :class:`os.PathLike` values
      become strings) and come out as dicts/lists, with the TrueNAS field names.
    * Local paths (database, seed, log directory, pool root) may be ``str``, ``bytes`` or
      :class:`os.PathLike`; they are passed as bytes (:func:`os.fsencode`).
    * Every failure raises a :class:`CloudsyncError` subclass chosen by its result code
      (see :data:`ERRORS`), with the error's detail as attributes.
    * Every string and object the library allocates is copied and freed before the call
      returns: nothing leaks, nothing refers to freed memory.

Thread safety
    A :class:`Store` may be shared by many threads: the library handle is thread-safe,
    and ctypes releases the GIL for the duration of every library call, so for example
    :meth:`Store.run` may block in one thread while another calls :meth:`Store.abort` or
    :meth:`Store.jobs`. :meth:`Store.close` waits for calls still in progress on other
    threads (abort a running job first to make that quick) and then frees the handle;
    calls made after it raise :class:`ValueError`. Run callbacks are called from library
    threads (never two at once for one run); they may call other methods of the store,
    but not :meth:`Store.close`.

    A run blocks the calling thread inside the library: a ``KeyboardInterrupt`` is only
    seen once it returns. To stop a run early, return ``False`` from the progress
    callback, or call :meth:`Store.abort` / :meth:`Store.abort_job` from another thread
    (or process).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import threading
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    byref,
    c_bool,
    c_char_p,
    c_double,
    c_int64,
    c_size_t,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import IntEnum
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Type, Union

__all__ = [
    "__version__",
    "providers",
    "library_version",
    "library_version_info",
    "library_path",
    "result_text",
    "verify_credential",
    "generate_keypair",
    "Result",
    "CallbackResult",
    "Store",
    "JobOutcome",
    "Progress",
    "Entry",
    "ERRORS",
    "CloudsyncError",
    "InternalError",
    "InvalidInputError",
    "ValidationError",
    "NotFoundError",
    "DirNotFoundError",
    "AuthError",
    "NetworkError",
    "ServerError",
    "ProtocolError",
    "CorruptedError",
    "BadNameError",
    "LocalIOError",
    "AbortedError",
    "JobFailedError",
    "AlreadyQueuedError",
    "UnsupportedError",
    "OutOfRangeError",
]

#: The version of the C API this module was written for. The library must have the same
#: major.minor version (any patch level).
__version__ = "0.1.0"
_EXPECTED = tuple(int(x) for x in __version__.split(".")[:2])

PathArg = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
Body = Union[Mapping[str, Any], str, bytes]


# ---------------------------------------------------------------------------- result codes


class Result(IntEnum):
    """The C ``cloudsync_result`` codes (stable values, never renumbered)."""

    OK = 0
    NULL_PARAMETER = 1
    PANIC = 2
    INVALID_UTF8 = 3
    INVALID_JSON = 4
    INVALID_ARGUMENT = 5
    NOT_FOUND = 6
    PERMISSION = 7
    NETWORK = 8
    SERVER = 9
    PROTOCOL = 10
    CORRUPTED = 11
    BAD_NAME = 12
    IO = 13
    ABORTED = 14
    JOB_FAILED = 15
    ALREADY_QUEUED = 16
    UNSUPPORTED = 17
    DIR_NOT_FOUND = 18
    OUT_OF_RANGE = 19
    OTHER = 20

    @property
    def c_name(self) -> str:
        """The C name, e.g. ``"CLOUDSYNC_NOT_FOUND"``."""
        return "CLOUDSYNC_" + self.name


class CallbackResult(IntEnum):
    """What a progress callback may return (``cloudsync_callback_result``)."""

    CONTINUE = 0
    ABORT = 1


# ---------------------------------------------------------------------------- exceptions


class CloudsyncError(Exception):
    """A failure reported by libcloudsync.

    Attributes:
        code: the result code (int; a :class:`Result` member when known).
        name: the C name of the code, e.g. ``"CLOUDSYNC_NOT_FOUND"``.
        message: the library's English message (never holds a secret).
        path: the local path or remote key concerned (bytes), or None.
        provider: the provider concerned (``"s3"``, a credential type such as ``"S3"``), or None.
        remote: the remote concerned (e.g. ``"s3:bucket/folder"``), or None.
        http_status: the HTTP status the server answered, or 0.
        retryable: whether the same operation may succeed later.
        details: for validation errors, the list of ``[field, message]`` pairs (TrueNAS
            field names and texts); for :class:`JobFailedError`, the job's error details
            (a dict: ``kind``, ``exit_code``, ``retryable``, ``http_status``,
            ``provider``, ``remote``, ``path``); else None.
        outcome: for errors of a run (:class:`AbortedError`, :class:`JobFailedError`), the
            :class:`JobOutcome` of the job; else None.
    """

    def __init__(
        self,
        message: str,
        code: int = Result.OTHER,
        *,
        path: Optional[bytes] = None,
        provider: Optional[str] = None,
        remote: Optional[str] = None,
        http_status: int = 0,
        retryable: bool = False,
        details: Optional[Any] = None,
        outcome: Optional["JobOutcome"] = None,
    ) -> None:
        super().__init__(message)
        try:
            code = Result(code)
        except ValueError:
            code = int(code)
        self.code: int = code
        self.name: str = code.c_name if isinstance(code, Result) else "CLOUDSYNC_UNKNOWN_%d" % code
        self.message: str = message
        self.path = path
        self.provider = provider
        self.remote = remote
        self.http_status = http_status
        self.retryable = retryable
        self.details = details
        self.outcome = outcome

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return "%s(%r, code=%s)" % (type(self).__name__, self.message, self.name)


class InternalError(CloudsyncError):
    """CLOUDSYNC_PANIC or CLOUDSYNC_NULL_PARAMETER: a bug in cloudsync or in this binding."""


class InvalidInputError(CloudsyncError, ValueError):
    """CLOUDSYNC_INVALID_JSON / CLOUDSYNC_INVALID_UTF8: an argument the library cannot read."""


class ValidationError(InvalidInputError):
    """CLOUDSYNC_INVALID_ARGUMENT: validation failed; :attr:`details` lists ``[field, message]``."""


class NotFoundError(CloudsyncError, LookupError):
    """CLOUDSYNC_NOT_FOUND: the credential, task, job or file does not exist."""


class DirNotFoundError(NotFoundError):
    """CLOUDSYNC_DIR_NOT_FOUND: a directory that should exist does not."""


class AuthError(CloudsyncError, PermissionError):
    """CLOUDSYNC_PERMISSION: credentials rejected, access denied, or secrets unavailable."""


class NetworkError(CloudsyncError, ConnectionError):
    """CLOUDSYNC_NETWORK: connect, reset, timeout."""


class ServerError(CloudsyncError):
    """CLOUDSYNC_SERVER: the server answered with an error (see :attr:`http_status`)."""


class ProtocolError(CloudsyncError):
    """CLOUDSYNC_PROTOCOL: the server's answer does not parse."""


class CorruptedError(CloudsyncError):
    """CLOUDSYNC_CORRUPTED: data did not verify (size, hash, ciphertext authentication)."""


class BadNameError(CloudsyncError, ValueError):
    """CLOUDSYNC_BAD_NAME: a name or key that cannot be used safely."""


class LocalIOError(CloudsyncError, OSError):
    """CLOUDSYNC_IO: a local filesystem error."""


class AbortedError(CloudsyncError):
    """CLOUDSYNC_ABORTED: the job was aborted; :attr:`outcome` is its :class:`JobOutcome`."""


class JobFailedError(CloudsyncError):
    """CLOUDSYNC_JOB_FAILED: the job ran and failed; the message is the job's error (one
    sentence), :attr:`details` its fields and :attr:`outcome` its :class:`JobOutcome`."""

    @property
    def exit_code(self) -> int:
        """rclone's exit code for the job's error (1 when the library did not say)."""
        if isinstance(self.details, dict):
            return int(self.details.get("exit_code", 1))
        return 1


class AlreadyQueuedError(CloudsyncError):
    """CLOUDSYNC_ALREADY_QUEUED. Not raised by :meth:`Store.run`, which returns the waiting
    job's outcome (state ``"WAITING"``) instead."""


class UnsupportedError(CloudsyncError, NotImplementedError):
    """CLOUDSYNC_UNSUPPORTED: the provider or remote does not support the operation."""


class OutOfRangeError(CloudsyncError, IndexError):
    """CLOUDSYNC_OUT_OF_RANGE: an index past the end of a listing."""


#: The exception class raised for each result code (CLOUDSYNC_OTHER and unknown codes
#: raise :class:`CloudsyncError` itself).
ERRORS: Dict[int, Type[CloudsyncError]] = {
    Result.NULL_PARAMETER: InternalError,
    Result.PANIC: InternalError,
    Result.INVALID_UTF8: InvalidInputError,
    Result.INVALID_JSON: InvalidInputError,
    Result.INVALID_ARGUMENT: ValidationError,
    Result.NOT_FOUND: NotFoundError,
    Result.PERMISSION: AuthError,
    Result.NETWORK: NetworkError,
    Result.SERVER: ServerError,
    Result.PROTOCOL: ProtocolError,
    Result.CORRUPTED: CorruptedError,
    Result.BAD_NAME: BadNameError,
    Result.IO: LocalIOError,
    Result.ABORTED: AbortedError,
    Result.JOB_FAILED: JobFailedError,
    Result.ALREADY_QUEUED: AlreadyQueuedError,
    Result.UNSUPPORTED: UnsupportedError,
    Result.DIR_NOT_FOUND: DirNotFoundError,
    Result.OUT_OF_RANGE: OutOfRangeError,
}


# ---------------------------------------------------------------------------- C types


class _CEntry(Structure):
    # `name` as a plain pointer: it is read with its length (names may hold any byte).
    _fields_ = [
        ("name", c_void_p),
        ("name_len", c_size_t),
        ("is_dir", c_bool),
        ("size", c_int64),
        ("has_mtime", c_bool),
        ("mtime_ns", c_int64),
    ]


class _CProgress(Structure):
    # `description` is borrowed (valid during the callback, never freed by the caller), so
    # c_char_p's copy-on-read is exactly right here.
    _fields_ = [
        ("job_id", c_int64),
        ("percent", c_uint32),
        ("files_done", c_uint64),
        ("files_total", c_uint64),
        ("bytes_done", c_uint64),
        ("bytes_total", c_uint64),
        ("checks_done", c_uint64),
        ("checks_total", c_uint64),
        ("deletes", c_uint64),
        ("errors", c_uint64),
        ("speed", c_double),
        ("eta_seconds", c_int64),
        ("elapsed_ms", c_uint64),
        ("listing_done", c_bool),
        ("description", c_char_p),
    ]


_PROGRESS_CB = CFUNCTYPE(c_uint32, c_void_p, POINTER(_CProgress))
# `line` as a plain pointer: read with its length.
_LOG_CB = CFUNCTYPE(None, c_void_p, c_int64, c_void_p, c_size_t)


class _CRunOptions(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("dry_run", c_bool),
        ("progress", _PROGRESS_CB),
        ("log", _LOG_CB),
        ("userdata", c_void_p),
    ]


_HANDLE = c_void_p  # cloudsync_store *, cloudsync_listing *, cloudsync_error * (opaque)
_OUT = POINTER(c_void_p)  # T ** out-parameters, char ** included: read, then freed by us
_RC = c_uint32  # cloudsync_result

# name: (restype, argtypes). Strings the library allocates (char **) come back through
# c_void_p out-parameters so that ctypes never converts (and loses) a pointer we must free;
# c_char_p is used only for borrowed, static or error-owned strings, which are copied.
_SIGNATURES: Dict[str, Tuple[Any, List[Any]]] = {
    "cloudsync_version": (c_char_p, []),
    "cloudsync_version_number": (c_uint32, []),
    "cloudsync_result_text": (c_char_p, [c_uint32]),
    "cloudsync_string_free": (None, [c_void_p]),
    "cloudsync_error_code": (c_uint32, [_HANDLE]),
    "cloudsync_error_message": (c_char_p, [_HANDLE]),
    "cloudsync_error_path": (c_void_p, [_HANDLE, POINTER(c_size_t)]),
    "cloudsync_error_provider": (c_char_p, [_HANDLE]),
    "cloudsync_error_remote": (c_char_p, [_HANDLE]),
    "cloudsync_error_http_status": (c_uint16, [_HANDLE]),
    "cloudsync_error_retryable": (c_bool, [_HANDLE]),
    "cloudsync_error_details": (c_char_p, [_HANDLE]),
    "cloudsync_error_free": (None, [_HANDLE]),
    "cloudsync_store_open": (_RC, [c_char_p, c_char_p, _OUT, _OUT]),
    "cloudsync_store_set_log_dir": (_RC, [_HANDLE, c_char_p, _OUT]),
    "cloudsync_store_set_pool_root": (_RC, [_HANDLE, c_char_p, _OUT]),
    "cloudsync_store_set_require_dataset": (_RC, [_HANDLE, c_bool, _OUT]),
    "cloudsync_store_secrets_available": (c_bool, [_HANDLE]),
    "cloudsync_store_free": (None, [_HANDLE]),
    "cloudsync_credential_create": (_RC, [_HANDLE, c_char_p, _OUT, _OUT]),
    "cloudsync_credential_update": (_RC, [_HANDLE, c_int64, c_char_p, _OUT, _OUT]),
    "cloudsync_credential_delete": (_RC, [_HANDLE, c_int64, _OUT]),
    "cloudsync_credential_get": (_RC, [_HANDLE, c_int64, c_bool, _OUT, _OUT]),
    "cloudsync_credential_list": (_RC, [_HANDLE, c_bool, _OUT, _OUT]),
    "cloudsync_providers": (_RC, [_OUT, _OUT]),
    "cloudsync_keychain_create": (_RC, [_HANDLE, c_char_p, _OUT, _OUT]),
    "cloudsync_keychain_generate": (_RC, [_OUT, _OUT]),
    "cloudsync_keychain_list": (_RC, [_HANDLE, c_bool, _OUT, _OUT]),
    "cloudsync_keychain_delete": (_RC, [_HANDLE, c_int64, _OUT]),
    "cloudsync_credential_verify": (_RC, [_HANDLE, c_char_p, _OUT, _OUT]),
    "cloudsync_credential_verify_id": (_RC, [_HANDLE, c_int64, _OUT, _OUT]),
    "cloudsync_task_create": (_RC, [_HANDLE, c_char_p, _OUT, _OUT]),
    "cloudsync_task_update": (_RC, [_HANDLE, c_int64, c_char_p, _OUT, _OUT]),
    "cloudsync_task_delete": (_RC, [_HANDLE, c_int64, _OUT]),
    "cloudsync_task_get": (_RC, [_HANDLE, c_int64, c_bool, _OUT, _OUT]),
    "cloudsync_task_list": (_RC, [_HANDLE, c_bool, _OUT, _OUT]),
    "cloudsync_task_validate": (_RC, [_HANDLE, c_char_p, _OUT, _OUT]),
    "cloudsync_task_restore": (_RC, [_HANDLE, c_int64, c_char_p, _OUT, _OUT]),
    "cloudsync_task_verify": (_RC, [_HANDLE, c_char_p, _OUT, _OUT]),
    "cloudsync_config_export": (_RC, [_HANDLE, c_bool, _OUT, _OUT]),
    "cloudsync_config_import": (_RC, [_HANDLE, c_char_p, _OUT, _OUT]),
    "cloudsync_task_abort": (_RC, [_HANDLE, c_int64, POINTER(c_bool), _OUT]),
    "cloudsync_job_get": (_RC, [_HANDLE, c_int64, _OUT, _OUT]),
    "cloudsync_job_list": (_RC, [_HANDLE, c_int64, c_uint32, _OUT, _OUT]),
    "cloudsync_job_log": (_RC, [_HANDLE, c_int64, _OUT, _OUT]),
    "cloudsync_job_abort": (_RC, [_HANDLE, c_int64, POINTER(c_bool), _OUT]),
    "cloudsync_list_directory": (_RC, [_HANDLE, c_char_p, _OUT, _OUT]),
    "cloudsync_list_buckets": (_RC, [_HANDLE, c_int64, _OUT, _OUT]),
    "cloudsync_create_bucket": (_RC, [_HANDLE, c_int64, c_char_p, _OUT]),
    "cloudsync_listing_len": (c_size_t, [_HANDLE]),
    "cloudsync_listing_get": (_RC, [_HANDLE, c_size_t, POINTER(_CEntry), _OUT]),
    "cloudsync_listing_free": (None, [_HANDLE]),
    "cloudsync_task_run": (
        _RC,
        [_HANDLE, c_int64, POINTER(_CRunOptions), POINTER(c_int64), _OUT, _OUT],
    ),
    "cloudsync_task_run_onetime": (
        _RC,
        [_HANDLE, c_char_p, POINTER(_CRunOptions), POINTER(c_int64), _OUT, _OUT],
    ),
}


# ---------------------------------------------------------------------------- loading


def _load() -> Tuple[ctypes.CDLL, str]:
    hint = (
        "Build it with `cargo build --lib` (target/debug/libcloudsync.so) and set "
        "CLOUDSYNC_LIBRARY to its path, or install libcloudsync.so.0 where the dynamic "
        "loader finds it."
    )
    explicit = os.environ.get("CLOUDSYNC_LIBRARY")
    if explicit:
        if not os.path.exists(explicit):
            raise ImportError(
                "cloudsync: cannot load libcloudsync: CLOUDSYNC_LIBRARY=%s: no such file. %s"
                % (explicit, hint)
            )
        try:
            return ctypes.CDLL(explicit), explicit
        except OSError as e:
            raise ImportError(
                "cloudsync: cannot load libcloudsync from CLOUDSYNC_LIBRARY=%s: %s. %s"
                % (explicit, e, hint)
            ) from None
    errors = []
    candidates = ["libcloudsync.so.0"]
    found = ctypes.util.find_library("cloudsync")
    if found and found not in candidates:
        candidates.append(found)
    for name in candidates:
        try:
            return ctypes.CDLL(name), name
        except OSError as e:
            errors.append(str(e))
    raise ImportError(
        "cloudsync: cannot find libcloudsync (CLOUDSYNC_LIBRARY is not set and the dynamic "
        "loader does not find libcloudsync.so.0: %s). %s" % ("; ".join(errors), hint)
    )


def _declare(lib: ctypes.CDLL, where: str) -> None:
    for name, (restype, argtypes) in _SIGNATURES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise ImportError(
                "cloudsync: %s does not export %s: not a libcloudsync this module supports"
                % (where, name)
            ) from None
        fn.restype = restype
        fn.argtypes = argtypes


_lib, _lib_path = _load()
_declare(_lib, _lib_path)


def _version_info() -> Tuple[int, int, int]:
    n = _lib.cloudsync_version_number()
    return (n // 10000, n // 100 % 100, n % 100)


def _check_version() -> None:
    info = _version_info()
    if info[:2] != _EXPECTED:
        raise ImportError(
            "cloudsync: %s is version %d.%d.%d; this module needs %d.%d.x"
            % ((_lib_path,) + info + _EXPECTED)
        )


_check_version()


def library_version() -> str:
    """The version of the loaded library, e.g. ``"0.1.0"``."""
    return _lib.cloudsync_version().decode("ascii", "replace")


def library_version_info() -> Tuple[int, int, int]:
    """The version of the loaded library as ``(major, minor, patch)``."""
    return _version_info()


def library_path() -> str:
    """The path or name the library was loaded from."""
    return _lib_path


def result_text(code: int) -> str:
    """The library's English description of a result code (any integer)."""
    code = int(code)
    if not 0 <= code <= 0xFFFFFFFF:
        return "unknown result code"
    text = _lib.cloudsync_result_text(code)
    return text.decode("utf-8", "replace") if text is not None else "unknown result code"


# ---------------------------------------------------------------------------- helpers


def _take_string(out: c_void_p) -> Optional[bytes]:
    """Copy and free a string the library returned through a ``char **``."""
    ptr = out.value
    if not ptr:
        return None
    out.value = None
    try:
        return ctypes.string_at(ptr)
    finally:
        _lib.cloudsync_string_free(ptr)


def _opt_text(b: Optional[bytes]) -> Optional[str]:
    return None if b is None else b.decode("utf-8", "replace")


def _take_error(rc: int, err: c_void_p) -> CloudsyncError:
    """Build the exception for result `rc` from error object `err` (freed here)."""
    ptr = err.value
    err.value = None
    if not ptr:
        return ERRORS.get(rc, CloudsyncError)(result_text(rc), rc)
    try:
        code = _lib.cloudsync_error_code(ptr)
        message = _opt_text(_lib.cloudsync_error_message(ptr)) or result_text(code)
        n = c_size_t(0)
        p = _lib.cloudsync_error_path(ptr, byref(n))
        path = ctypes.string_at(p, n.value) if p else None
        provider = _opt_text(_lib.cloudsync_error_provider(ptr))
        remote = _opt_text(_lib.cloudsync_error_remote(ptr))
        http_status = int(_lib.cloudsync_error_http_status(ptr))
        retryable = bool(_lib.cloudsync_error_retryable(ptr))
        raw = _lib.cloudsync_error_details(ptr)
    finally:
        _lib.cloudsync_error_free(ptr)
    details = None
    if raw is not None:
        try:
            details = json.loads(raw)
        except ValueError:
            details = [["", raw.decode("utf-8", "replace")]]
    if code != rc and rc != Result.OK:
        code = rc  # the function's result is authoritative
    return ERRORS.get(code, CloudsyncError)(
        message,
        code,
        path=path,
        provider=provider,
        remote=remote,
        http_status=http_status,
        retryable=retryable,
        details=details,
    )


def _check(rc: int, err: c_void_p) -> None:
    """Raise for a failed call; always free the error object."""
    if rc == Result.OK:
        if err.value:  # not expected, but never leak it
            _lib.cloudsync_error_free(err.value)
            err.value = None
        return
    raise _take_error(rc, err)


def _json_default(o: Any) -> Any:
    if isinstance(o, os.PathLike):
        p = os.fspath(o)
        return p if isinstance(p, str) else p.decode("utf-8")
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    raise TypeError("Object of type %s is not JSON serializable" % type(o).__name__)


def _json_arg(body: Body) -> bytes:
    """A body as NUL-terminated UTF-8 JSON."""
    if isinstance(body, bytes):
        data = body
    elif isinstance(body, str):
        data = body.encode("utf-8")
    else:
        data = json.dumps(body, ensure_ascii=False, default=_json_default).encode("utf-8")
    if b"\0" in data:
        raise ValueError("embedded null byte in JSON text")
    return data


def _path_arg(path: PathArg, what: str) -> bytes:
    b = os.fsencode(path)
    if b"\0" in b:
        raise ValueError("embedded null byte in %s" % what)
    return b


def _id_arg(value: int, what: str) -> int:
    if isinstance(value, bool):
        raise TypeError("%s must be an integer, not bool" % what)
    try:
        v = value.__index__()
    except AttributeError:
        raise TypeError("%s must be an integer, not %s" % (what, type(value).__name__)) from None
    if not -(2**63) <= v < 2**63:
        raise ValueError("%s out of range: %d" % (what, v))
    return v


def _ns_to_datetime(ns: int) -> Optional[datetime]:
    try:
        return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=ns // 1000)
    except OverflowError:
        return None


# ---------------------------------------------------------------------------- value types


@dataclass(frozen=True)
class JobOutcome:
    """How a run ended: ``state`` is ``"SUCCESS"``, ``"FAILED"``, ``"ABORTED"``, or
    ``"WAITING"`` when the task already had a waiting job (whose id is ``job_id``)."""

    job_id: int
    state: str
    error: Optional[str] = None
    logs_excerpt: Optional[str] = None

    @property
    def succeeded(self) -> bool:
        return self.state == "SUCCESS"

    @classmethod
    def _from_json(cls, data: bytes) -> "JobOutcome":
        d = json.loads(data)
        return cls(
            job_id=int(d.get("job_id") or 0),
            state=str(d.get("state") or ""),
            error=d.get("error"),
            logs_excerpt=d.get("logs_excerpt"),
        )


@dataclass(frozen=True)
class Progress:
    """A copy of ``cloudsync_progress``, given to the progress callback.

    ``percent`` (0..100) never goes down within a job; totals are final once
    ``listing_done``; ``eta_seconds`` is None when unknown; ``speed`` is in bytes/s.
    """

    job_id: int
    percent: int
    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    checks_done: int
    checks_total: int
    deletes: int
    errors: int
    speed: float
    eta_seconds: Optional[int]
    elapsed_ms: int
    listing_done: bool
    description: str

    @classmethod
    def _from_c(cls, p: _CProgress) -> "Progress":
        return cls(
            job_id=p.job_id,
            percent=p.percent,
            files_done=p.files_done,
            files_total=p.files_total,
            bytes_done=p.bytes_done,
            bytes_total=p.bytes_total,
            checks_done=p.checks_done,
            checks_total=p.checks_total,
            deletes=p.deletes,
            errors=p.errors,
            speed=p.speed,
            eta_seconds=None if p.eta_seconds < 0 else p.eta_seconds,
            elapsed_ms=p.elapsed_ms,
            listing_done=bool(p.listing_done),
            description=(p.description or b"").decode("utf-8", "replace"),
        )


@dataclass(frozen=True)
class Entry:
    """One entry of a listing.

    ``name`` is ``name_bytes`` decoded as UTF-8 with ``surrogateescape`` (as
    :func:`os.fsdecode` does on a UTF-8 system), so that ``os.fsencode(name) ==
    name_bytes`` even for names that are not UTF-8. ``size`` is None for directories and
    when unknown; ``mtime`` is a UTC :class:`datetime` (microsecond precision;
    ``mtime_ns`` keeps the nanoseconds), or None when unknown.
    """

    name: str
    name_bytes: bytes
    is_dir: bool
    size: Optional[int]
    mtime: Optional[datetime]
    mtime_ns: Optional[int]


def _read_listing(ptr: int) -> List[Entry]:
    """Read every entry of a listing handle, then free it (also on failure)."""
    try:
        n = _lib.cloudsync_listing_len(ptr)
        entries = []
        for i in range(n):
            e = _CEntry()
            err = c_void_p()
            _check(_lib.cloudsync_listing_get(ptr, i, byref(e), byref(err)), err)
            name = ctypes.string_at(e.name, e.name_len) if e.name else b""
            mtime_ns = e.mtime_ns if e.has_mtime else None
            entries.append(
                Entry(
                    name=name.decode("utf-8", "surrogateescape"),
                    name_bytes=name,
                    is_dir=bool(e.is_dir),
                    # The header gives -1 for directories, but list_directory gives 0.
                    size=None if e.size < 0 or e.is_dir else e.size,
                    mtime=None if mtime_ns is None else _ns_to_datetime(mtime_ns),
                    mtime_ns=mtime_ns,
                )
            )
        return entries
    finally:
        _lib.cloudsync_listing_free(ptr)


# ---------------------------------------------------------------------------- runs

_tls = threading.local()

ProgressCallback = Callable[[Progress], Any]
LogCallback = Callable[[int, str], Any]


class _Run:
    """The callbacks of one run: the CFUNCTYPE objects (kept alive by this object for the
    duration of the call) and the first exception a user callback raised."""

    def __init__(
        self, store: "Store", progress: Optional[ProgressCallback], log: Optional[LogCallback]
    ) -> None:
        self.store = store
        self.user_progress = progress
        self.user_log = log
        self.exception: Optional[BaseException] = None
        self.lock = threading.Lock()
        self.aborters: List[threading.Thread] = []
        # The job's id, as soon as a callback tells it (to abort it on Ctrl-C).
        self.job_id = 0
        # Our trampolines are always installed: a failed callback and Ctrl-C can abort the
        # job through them, and they learn the job's id.
        self.c_progress = _PROGRESS_CB(self._on_progress)
        self.c_log = _LOG_CB(self._on_log)

    def options(self, dry_run: bool) -> _CRunOptions:
        opts = _CRunOptions()
        opts.size = ctypes.sizeof(_CRunOptions)
        opts.dry_run = bool(dry_run)
        opts.progress = self.c_progress
        opts.log = self.c_log
        return opts

    def interrupt(self, exc: BaseException) -> None:
        """Ctrl-C in the calling thread: abort the job (now if its id is known, else at
        the next callback) and raise `exc` once the run has ended."""
        self._fail(exc, self.job_id, request_abort=True)

    def _fail(self, exc: BaseException, job_id: int, request_abort: bool) -> None:
        with self.lock:
            if self.exception is not None:
                return
            self.exception = exc
        if request_abort and job_id > 0:
            self._abort_later(job_id)

    def _abort_later(self, job_id: int) -> None:
        # Ask the library from another thread: never call back into it from inside a
        # callback (it may hold a lock the call needs).
        t = threading.Thread(target=self.store._abort_quietly, args=(job_id,), name="cloudsync-abort", daemon=True)
        self.aborters.append(t)
        t.start()

    def _on_progress(self, _userdata: Any, p: Any) -> int:
        _tls.in_callback = True
        try:
            self.job_id = self.job_id or int(p.contents.job_id)
            if self.exception is not None:
                return CallbackResult.ABORT
            if self.user_progress is None:
                return CallbackResult.CONTINUE
            r = self.user_progress(Progress._from_c(p.contents))
            if r is False or r is CallbackResult.ABORT:
                return CallbackResult.ABORT
            return CallbackResult.CONTINUE
        except StopIteration:
            return CallbackResult.ABORT
        except BaseException as e:  # noqa: B902 - nothing may escape into C
            try:
                job_id = int(p.contents.job_id)
            except BaseException:
                job_id = 0
            self._fail(e, job_id, request_abort=False)
            return CallbackResult.ABORT
        finally:
            _tls.in_callback = False

    def _on_log(self, _userdata: Any, job_id: int, line: Optional[int], length: int) -> None:
        _tls.in_callback = True
        try:
            if not self.job_id and job_id > 0:
                self.job_id = int(job_id)
                if self.exception is not None:  # interrupted before the id was known
                    self._abort_later(self.job_id)
            if self.exception is not None or self.user_log is None:
                return
            text = ctypes.string_at(line, length).decode("utf-8", "replace") if line else ""
            self.user_log(int(job_id), text)
        except BaseException as e:  # noqa: B902 - nothing may escape into C
            self._fail(e, int(job_id), request_abort=True)
        finally:
            _tls.in_callback = False

    def finish(self) -> None:
        for t in self.aborters:
            t.join()


# ---------------------------------------------------------------------------- the store


class Store:
    """An open configuration store (``cloudsync_store``): the database, its secret seed
    and the runner settings.

    ``Store(db_path, seed_path, *, log_dir=None, pool_root=None, require_dataset=None)``
    opens (creating if needed) the database and the seed (created with mode 0600 for a new
    database). Job logs default to ``jobs/`` next to the database and the pool root to
    ``/mnt``; ``require_dataset=False`` lets task paths lie on plain directories below the
    pool root. A seed that does not match the database still opens
    (:attr:`secrets_available` is then False and operations needing a secret raise
    :class:`AuthError`).

    Use it as a context manager, or call :meth:`close` (idempotent). Thread-safe: see the
    module documentation.
    """

    #: Return this (or False) from a progress callback to abort the job.
    ABORT = CallbackResult.ABORT
    #: Return this (or None/True) from a progress callback to go on.
    CONTINUE = CallbackResult.CONTINUE

    def __init__(
        self,
        db_path: PathArg,
        seed_path: PathArg,
        *,
        log_dir: Optional[PathArg] = None,
        pool_root: Optional[PathArg] = None,
        require_dataset: Optional[bool] = None,
    ) -> None:
        self._handle: Optional[int] = None
        self._busy = 0
        self._closing = False
        self._cond = threading.Condition(threading.Lock())
        db = _path_arg(db_path, "db_path")
        seed = _path_arg(seed_path, "seed_path")
        out = c_void_p()
        err = c_void_p()
        _check(_lib.cloudsync_store_open(db, seed, byref(out), byref(err)), err)
        self._handle = out.value
        self.db_path = db_path
        try:
            if log_dir is not None:
                self.set_log_dir(log_dir)
            if pool_root is not None:
                self.set_pool_root(pool_root)
            if require_dataset is not None:
                self.set_require_dataset(require_dataset)
        except BaseException:
            self.close()
            raise

    # -- lifetime

    def _enter(self) -> int:
        with self._cond:
            if self._handle is None or self._closing:
                raise ValueError("operation on a closed cloudsync Store")
            self._busy += 1
            return self._handle

    def _leave(self) -> None:
        with self._cond:
            self._busy -= 1
            if self._busy == 0:
                self._cond.notify_all()

    def close(self) -> None:
        """Free the library handle. Idempotent. Waits for calls in progress on other
        threads (a running job: until it ends; abort it first to make that quick)."""
        with self._cond:
            if self._handle is None or self._closing:
                # Closed, or another thread is closing: wait for it to finish.
                while self._handle is not None:
                    self._cond.wait()
                return
            if self._busy and getattr(_tls, "in_callback", False):
                raise RuntimeError("a Store cannot be closed from inside a run callback")
            self._closing = True
            while self._busy:
                self._cond.wait()
            handle, self._handle = self._handle, None
            try:
                _lib.cloudsync_store_free(handle)
            finally:
                self._closing = False
                self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._handle is None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_handle", None) is not None and _lib is not None:
            try:
                import warnings

                warnings.warn("unclosed cloudsync Store %r" % (self,), ResourceWarning, source=self)
                self.close()
            except Exception:
                pass

    def __repr__(self) -> str:
        state = "closed" if self._handle is None else "open"
        return "<cloudsync.Store %s %r>" % (state, getattr(self, "db_path", None))

    # -- call shapes

    def _call(self, fname: str, *args: Any) -> None:
        err = c_void_p()
        h = self._enter()
        try:
            rc = getattr(_lib, fname)(h, *args, byref(err))
        finally:
            self._leave()
        _check(rc, err)

    def _call_out(self, fname: str, *args: Any) -> Optional[bytes]:
        out = c_void_p()
        err = c_void_p()
        h = self._enter()
        try:
            rc = getattr(_lib, fname)(h, *args, byref(out), byref(err))
        finally:
            self._leave()
        text = _take_string(out)  # freed whatever the result
        _check(rc, err)
        return text

    def _call_json(self, fname: str, *args: Any) -> Any:
        text = self._call_out(fname, *args)
        if text is None:
            raise InternalError("%s returned no JSON" % fname, Result.OTHER)
        return json.loads(text)

    def _call_bool(self, fname: str, *args: Any) -> bool:
        flag = c_bool(False)
        self._call(fname, *args, byref(flag))
        return bool(flag.value)

    def _call_listing(self, fname: str, *args: Any) -> List[Entry]:
        out = c_void_p()
        err = c_void_p()
        h = self._enter()
        try:
            rc = getattr(_lib, fname)(h, *args, byref(out), byref(err))
        finally:
            self._leave()
        if out.value and rc != Result.OK:  # not expected, but never leak it
            _lib.cloudsync_listing_free(out.value)
            out.value = None
        _check(rc, err)
        if not out.value:
            return []
        return _read_listing(out.value)

    # -- settings

    def set_log_dir(self, log_dir: PathArg) -> None:
        """Where job logs are written (for jobs started afterwards)."""
        self._call("cloudsync_store_set_log_dir", _path_arg(log_dir, "log_dir"))

    def set_pool_root(self, pool_root: PathArg) -> None:
        """The pool mount root (default ``/mnt``): task paths must lie below it."""
        self._call("cloudsync_store_set_pool_root", _path_arg(pool_root, "pool_root"))

    def set_require_dataset(self, require: bool) -> None:
        """Whether task paths must lie on a dataset mounted below the pool root (default
        True) rather than on the pool root's own filesystem."""
        self._call("cloudsync_store_set_require_dataset", bool(require))

    @property
    def secrets_available(self) -> bool:
        """Whether stored secrets can be decrypted (the seed matches the database)."""
        h = self._enter()
        try:
            return bool(_lib.cloudsync_store_secrets_available(h))
        finally:
            self._leave()

    # -- credentials

    def create_credential(self, body: Body) -> Dict[str, Any]:
        """Create a credential from ``{"name": ..., "provider": {"type": "S3", ...}}``;
        returns the stored entry with its ``id`` (secrets included)."""
        return self._call_json("cloudsync_credential_create", _json_arg(body))

    def update_credential(self, credential_id: int, body: Body) -> Dict[str, Any]:
        """Update ``name`` and/or ``provider`` (replaced whole); returns the entry."""
        return self._call_json(
            "cloudsync_credential_update", _id_arg(credential_id, "credential_id"), _json_arg(body)
        )

    def delete_credential(self, credential_id: int) -> None:
        """Delete a credential; :class:`ValidationError` while a task uses it."""
        self._call("cloudsync_credential_delete", _id_arg(credential_id, "credential_id"))

    def get_credential(self, credential_id: int, reveal: bool = False) -> Dict[str, Any]:
        """One credential (``id``, ``name``, ``provider``); secrets are replaced by a
        placeholder unless ``reveal``."""
        return self._call_json(
            "cloudsync_credential_get", _id_arg(credential_id, "credential_id"), bool(reveal)
        )

    def list_credentials(self, reveal: bool = False) -> List[Dict[str, Any]]:
        """Every credential (secrets redacted unless ``reveal``)."""
        return self._call_json("cloudsync_credential_list", bool(reveal))

    def verify_credential(self, provider: Body) -> Dict[str, Any]:
        """Verify a provider object (not stored) by listing what it can see: returns
        ``{"valid": bool, "error": str|None, "excerpt": str|None}``."""
        return self._call_json("cloudsync_credential_verify", _json_arg(provider))

    def verify_credential_id(self, credential_id: int) -> Dict[str, Any]:
        """Verify a stored credential, as :meth:`verify_credential`."""
        return self._call_json(
            "cloudsync_credential_verify_id", _id_arg(credential_id, "credential_id")
        )

    # -- keychain (SSH key pairs for SFTP credentials)

    def create_keypair(self, body: Body) -> Dict[str, Any]:
        """Store an SSH key pair: ``{"name": ..., "type": "SSH_KEY_PAIR", "attributes":
        {"private_key": ..., "public_key": ...}}`` (either key, or both, which must belong
        together). The private key is kept encrypted; the returned entry redacts it."""
        return self._call_json("cloudsync_keychain_create", _json_arg(body))

    def list_keypairs(self, reveal: bool = False) -> List[Dict[str, Any]]:
        """Every key pair; private keys replaced by a placeholder unless ``reveal``."""
        return self._call_json("cloudsync_keychain_list", bool(reveal))

    def delete_keypair(self, keypair_id: int) -> None:
        """Delete a key pair; :class:`ValidationError` while an SFTP credential uses it."""
        self._call("cloudsync_keychain_delete", _id_arg(keypair_id, "keypair_id"))

    # -- tasks

    def create_task(self, body: Body) -> Dict[str, Any]:
        """Create a task (TrueNAS field names; missing fields take their defaults);
        returns the stored task with its ``id``."""
        return self._call_json("cloudsync_task_create", _json_arg(body))

    def update_task(self, task_id: int, body: Body) -> Dict[str, Any]:
        """Shallow-merge ``body`` over the stored task and validate; returns the task."""
        return self._call_json("cloudsync_task_update", _id_arg(task_id, "task_id"), _json_arg(body))

    def delete_task(self, task_id: int) -> None:
        """Delete a task (a running job of it is aborted first, waiting up to 15 s)."""
        self._call("cloudsync_task_delete", _id_arg(task_id, "task_id"))

    def get_task(self, task_id: int, reveal: bool = False) -> Dict[str, Any]:
        """One task with its credential entry and last ``job``; the encryption password
        and salt are redacted unless ``reveal``."""
        return self._call_json("cloudsync_task_get", _id_arg(task_id, "task_id"), bool(reveal))

    def list_tasks(self, reveal: bool = False) -> List[Dict[str, Any]]:
        """Every task, as :meth:`get_task`."""
        return self._call_json("cloudsync_task_list", bool(reveal))

    def validate_task(self, body: Body) -> Dict[str, Any]:
        """Validate a task body as create would (nothing stored, no network); returns the
        normalized body with every default filled in."""
        return self._call_json("cloudsync_task_validate", _json_arg(body))

    def verify_task(self, body: Body) -> Dict[str, Any]:
        """Validate a task body, then make the remote checks (the location can be listed;
        PULL: the folder exists and is a directory; encrypted: the names decrypt) with a
        15 s connect and 30 s I/O timeout. Returns ``{"valid", "errors", "excerpt"}``."""
        return self._call_json("cloudsync_task_verify", _json_arg(body))

    def export_config(self, with_seed: bool = False) -> Dict[str, Any]:
        """The whole configuration, secrets still encrypted; ``with_seed`` adds the seed
        so that the export alone decrypts everything (keep it safe)."""
        return self._call_json("cloudsync_config_export", bool(with_seed))

    def import_config(self, export: Body) -> Dict[str, Any]:
        """Add the credentials and tasks of an export to this store; returns a report
        (``secrets`` tells whether the secrets could be read)."""
        return self._call_json("cloudsync_config_import", _json_arg(export))

    def restore_task(self, task_id: int, args: Body) -> Dict[str, Any]:
        """Create the reversed, disabled restore task of a task from ``{"description":
        ..., "transfer_mode": "SYNC"|"COPY", "path": ...}``; returns the new task."""
        return self._call_json("cloudsync_task_restore", _id_arg(task_id, "task_id"), _json_arg(args))

    def abort(self, task_id: int) -> bool:
        """Ask the running or waiting job of a task to abort (it notices within about a
        second). Returns whether there was a job to abort."""
        return self._call_bool("cloudsync_task_abort", _id_arg(task_id, "task_id"))

    abort_task = abort

    # -- jobs

    def job(self, job_id: int) -> Dict[str, Any]:
        """One job: ``id``, ``task_id``, ``state``, ``dry_run``, times, ``progress``,
        ``error``, ``logs_path``, ``logs_excerpt``."""
        return self._call_json("cloudsync_job_get", _id_arg(job_id, "job_id"))

    def jobs(self, task_id: Optional[int] = None, limit: int = 50) -> List[Dict[str, Any]]:
        """The newest ``limit`` jobs of a task (of every task when None), newest first."""
        limit = _id_arg(limit, "limit")
        if not 0 <= limit <= 0xFFFFFFFF:
            raise ValueError("limit out of range: %d" % limit)
        tid = 0 if task_id is None else _id_arg(task_id, "task_id")
        return self._call_json("cloudsync_job_list", tid, limit)

    def job_log(self, job_id: int) -> str:
        """The whole log of a job (or its excerpt when the log file is gone)."""
        text = self._call_out("cloudsync_job_log", _id_arg(job_id, "job_id"))
        return (text or b"").decode("utf-8", "replace")

    def abort_job(self, job_id: int) -> bool:
        """Ask a job to abort; returns whether it was still live."""
        return self._call_bool("cloudsync_job_abort", _id_arg(job_id, "job_id"))

    def _abort_quietly(self, job_id: int) -> None:
        try:
            self.abort_job(job_id)
        except Exception:
            pass

    # -- listings

    def list_directory(self, args: Body) -> List[Entry]:
        """List a remote folder: ``{"credentials": ID, "attributes": {"bucket": ...,
        "folder": ...}}`` plus, for an encrypted task, ``"encryption": True,
        "filename_encryption": ..., "encryption_password": ..., "encryption_salt": ...``
        (names then come decrypted). Returns a list of :class:`Entry` sorted by name: the
        library's listing is read whole, then freed, before this returns."""
        return self._call_listing("cloudsync_list_directory", _json_arg(args))

    def list_buckets(self, credential_id: int) -> List[Entry]:
        """The buckets a stored credential can see, as directory entries (a list, read
        whole and freed as :meth:`list_directory`)."""
        return self._call_listing("cloudsync_list_buckets", _id_arg(credential_id, "credential_id"))

    def create_bucket(self, credential_id: int, name: str) -> None:
        """Create bucket ``name`` in a stored credential's account (Storj only, as in
        TrueNAS; any other provider raises InvalidInputError "This provider can't create
        buckets" before any network call)."""
        if not isinstance(name, str) or "\0" in name:
            raise ValueError("name must be a str without null bytes")
        self._call("cloudsync_create_bucket", _id_arg(credential_id, "credential_id"), name.encode("utf-8"))

    # -- runs

    def run(
        self,
        task_id: int,
        dry_run: bool = False,
        progress: Optional[ProgressCallback] = None,
        log: Optional[LogCallback] = None,
    ) -> JobOutcome:
        """Run a saved task now (also a disabled one) and wait for it.

        Returns the :class:`JobOutcome` of a successful job, or of the task's already
        waiting job (state ``"WAITING"``; nothing new runs). Raises :class:`AbortedError`
        or :class:`JobFailedError` (with ``.outcome``), or another
        :class:`CloudsyncError` when the job could not start.

        ``progress(p: Progress)`` is called about once a second while the job transfers;
        returning ``False`` or :attr:`Store.ABORT`, or raising ``StopIteration``, aborts
        the job. ``log(job_id, line)`` gets every line written to the job's log. Both are
        called from library threads, never concurrently. An exception raised by a
        callback aborts the job and is re-raised from here once the job has ended (in
        place of the job's own result).
        """
        return self._run(
            "cloudsync_task_run", _id_arg(task_id, "task_id"), dry_run, progress, log
        )

    def run_onetime(
        self,
        body: Body,
        dry_run: bool = False,
        progress: Optional[ProgressCallback] = None,
        log: Optional[LogCallback] = None,
    ) -> JobOutcome:
        """Run an unsaved task body once (TrueNAS's ``sync_onetime``), validated as by
        :meth:`create_task`; otherwise as :meth:`run`."""
        return self._run("cloudsync_task_run_onetime", _json_arg(body), dry_run, progress, log)

    def _run(
        self,
        fname: str,
        what: Any,
        dry_run: bool,
        progress: Optional[ProgressCallback],
        log: Optional[LogCallback],
    ) -> JobOutcome:
        if progress is not None and not callable(progress):
            raise TypeError("progress must be callable")
        if log is not None and not callable(log):
            raise TypeError("log must be callable")
        state = _Run(self, progress, log)
        opts = state.options(dry_run)
        job_id = c_int64(0)
        out = c_void_p()
        err = c_void_p()
        h = self._enter()
        result: List[int] = []
        done = threading.Event()

        def call() -> None:
            try:
                result.append(getattr(_lib, fname)(h, what, byref(opts), byref(job_id), byref(out), byref(err)))
            finally:
                done.set()

        # The run goes on in a thread of its own, so that Ctrl-C reaches this one (a ctypes
        # call cannot be interrupted): it aborts the job, which then ends within a second.
        # (An Event, not Thread.join: an interrupted join can report a live thread as ended.)
        try:
            threading.Thread(target=call, name="cloudsync-run", daemon=True).start()
            while not done.is_set():
                try:
                    done.wait(0.1)
                except KeyboardInterrupt as e:
                    state.interrupt(e)
        finally:
            while not done.is_set():
                try:
                    done.wait(0.1)
                except KeyboardInterrupt:
                    pass  # already aborting
            self._leave()
        rc = result[0] if result else Result.PANIC
        try:
            text = _take_string(out)
            state.finish()
            outcome: Optional[JobOutcome] = None
            if text is not None:
                outcome = JobOutcome._from_json(text)
            elif job_id.value > 0:
                outcome = JobOutcome(job_id.value, "WAITING" if rc == Result.ALREADY_QUEUED else "")
        except BaseException:
            if err.value:
                _lib.cloudsync_error_free(err.value)
            raise
        if state.exception is not None:
            if err.value:
                _lib.cloudsync_error_free(err.value)
                err.value = None
            exc = state.exception
            state.exception = None
            raise exc
        if rc in (Result.OK, Result.ALREADY_QUEUED):
            if err.value:
                _lib.cloudsync_error_free(err.value)
            if outcome is None:
                raise InternalError("%s returned no outcome" % fname, Result.OTHER)
            return outcome
        e = _take_error(rc, err)
        e.outcome = outcome
        raise e


def providers() -> List[Dict[str, Any]]:
    """The providers the library knows (TrueNAS's ``cloudsync.providers``): ``name``,
    ``title``, ``credentials_schema``, ``credentials_oauth``, ``buckets``, ``bucket_title``
    and ``task_schema``. No store, no network."""
    out = c_void_p()
    err = c_void_p()
    rc = _lib.cloudsync_providers(byref(out), byref(err))
    text = _take_string(out)
    _check(rc, err)
    return json.loads(text or b"[]")


def generate_keypair() -> Dict[str, str]:
    """A new Ed25519 SSH key pair, not stored: ``{"private_key": OpenSSH text,
    "public_key": line}`` (TrueNAS's ``keychaincredential.generate_ssh_key_pair``)."""
    out = c_void_p()
    err = c_void_p()
    rc = _lib.cloudsync_keychain_generate(byref(out), byref(err))
    text = _take_string(out)
    _check(rc, err)
    return json.loads(text or b"{}")


def verify_credential(provider: Body) -> Dict[str, Any]:
    """Verify a provider object (``{"type": ..., ...}``) without a store: returns
    ``{"valid": bool, "error": str|None, "excerpt": str|None}``."""
    out = c_void_p()
    err = c_void_p()
    rc = _lib.cloudsync_credential_verify(None, _json_arg(provider), byref(out), byref(err))
    text = _take_string(out)
    _check(rc, err)
    return json.loads(text or b"null")
