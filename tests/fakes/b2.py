#!/usr/bin/env python3
"""A Backblaze B2 native-API server for tests, written from Backblaze's published API
documentation (b2api v1-v4): account authorisation with expiring tokens, buckets, upload
URLs (one upload at a time each, dropped after a failure), SHA1-checked uploads (hex,
hex_digits_at_end, do_not_verify), large files (start / get_upload_part_url / upload part /
finish / cancel / list_parts / list_unfinished), list_file_names with folders and
pagination, downloads by name and id with Range, hide, delete_file_version, copy_file.
Errors are B2's JSON bodies {status, code, message}.

Faults are scripted over POST /_fake/<what> with a JSON body:
  expire_tokens {}                         every issued token answers 401 expired_auth_token
  fail {"call": "b2_list_file_names", "status": 503, "count": 2, "retry_after": 1}
       call may also be "upload" (POSTs to upload URLs) or "download"
  cap_exceeded {"on": true}                uploads answer 403 cap_exceeded
  loop_listing {"count": 1}                the next listing repeats its nextFileName forever
  corrupt_download {"count": 1}            flip a byte of the next download body
GET /_fake/stats answers the calls made so far, by name.

Usage: b2.py PORT [--key-id ID --key KEY] [--token-ttl SECONDS]
"""

import base64
import hashlib
import json
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.RLock()
STATE = {
    "key_id": "test-key-id",
    "key": "test-application-key",
    "ttl": 86400.0,
    "tokens": {},  # token -> expiry (time.time())
    "upload_urls": {},  # token -> (bucketId, fileId or None, busy)
    "buckets": {},  # bucketId -> {name, type}
    "files": {},  # bucketId -> {name: [versions newest first]}
    "large": {},  # fileId -> {bucketId, name, info, ctype, parts{n: (sha1, data)}}
    "faults": [],
    "cap": False,
    "loop_listing": 0,
    "corrupt": 0,
    "stats": {},
}
ACCOUNT = "acct0001"


def now_ms():
    return int(time.time() * 1000)


class B2Error(Exception):
    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def file_json(bucket_id, v, version):
    size_key = "size" if version == 1 else "contentLength"
    return {
        "accountId": ACCOUNT,
        "action": v["action"],
        "bucketId": bucket_id,
        size_key: len(v["data"]) if v["action"] == "upload" else 0,
        "contentSha1": v["sha1"],
        "contentMd5": None,  # only files uploaded through the S3-compatible API have one
        "contentType": v["ctype"],
        "fileId": v["id"],
        "fileInfo": v["info"],
        "fileName": v["name"],
        "uploadTimestamp": v["ts"],
    }


def take_fault(call):
    with LOCK:
        for f in STATE["faults"]:
            if f["call"] == call and f["count"] > 0:
                f["count"] -= 1
                headers = {}
                if f.get("retry_after") is not None:
                    headers["Retry-After"] = str(f["retry_after"])
                code = {429: "too_many_requests", 503: "service_unavailable", 500: "internal_error",
                        401: "expired_auth_token", 403: "cap_exceeded", 400: "bad_request"}.get(f["status"], "error")
                raise B2Error(f["status"], code, "injected fault", headers)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    # --- plumbing ---------------------------------------------------------------------
    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def answer(self, status, obj=None, raw=None, headers=None):
        data = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if raw is None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def fail(self, e):
        self.answer(e.status, {"status": e.status, "code": e.code, "message": e.message}, headers=e.headers)

    def count(self, name):
        with LOCK:
            STATE["stats"][name] = STATE["stats"].get(name, 0) + 1

    def account_token(self):
        tok = self.headers.get("Authorization", "")
        with LOCK:
            exp = STATE["tokens"].get(tok)
        if exp is None:
            raise B2Error(401, "bad_auth_token", "Invalid authorization token")
        if exp < time.time():
            raise B2Error(401, "expired_auth_token", "Authorization token has expired")

    def base(self):
        return "http://%s" % self.headers.get("Host")

    # --- dispatch ---------------------------------------------------------------------
    def do_GET(self):
        try:
            u = urllib.parse.urlsplit(self.path)
            if u.path == "/_fake/stats":
                with LOCK:
                    return self.answer(200, STATE["stats"])
            parts = u.path.split("/")
            if len(parts) >= 4 and parts[1] == "b2api" and parts[3] == "b2_authorize_account":
                return self.authorize(int(parts[2].lstrip("v") or 1))
            if len(parts) >= 4 and parts[1] == "b2api" and parts[3] == "b2_download_file_by_id":
                q = urllib.parse.parse_qs(u.query)
                return self.download(by_id=q.get("fileId", [""])[0])
            if u.path.startswith("/file/"):
                rest = u.path[len("/file/"):]
                bucket, _, name = rest.partition("/")
                return self.download(bucket=urllib.parse.unquote(bucket), name=urllib.parse.unquote(name))
            raise B2Error(404, "not_found", "no such endpoint")
        except B2Error as e:
            self.fail(e)

    def do_HEAD(self):
        self.do_GET()

    def do_POST(self):
        try:
            u = urllib.parse.urlsplit(self.path)
            if u.path.startswith("/_fake/"):
                return self.fake(u.path[len("/_fake/"):], json.loads(self.body() or b"{}"))
            if u.path.startswith("/upload/"):
                return self.upload(u.path[len("/upload/"):])
            parts = u.path.split("/")
            if len(parts) != 4 or parts[1] != "b2api":
                raise B2Error(404, "not_found", "no such endpoint")
            version = int(parts[2].lstrip("v") or 1)
            call = parts[3]
            raw = self.body()
            self.count(call)
            take_fault(call)
            if call == "b2_authorize_account":
                return self.authorize(version)
            self.account_token()
            try:
                req = json.loads(raw or b"{}")
            except ValueError:
                raise B2Error(400, "bad_request", "request body is not JSON")
            fn = getattr(self, "api_" + call[3:], None)
            if fn is None:
                raise B2Error(400, "bad_request", "unknown call %s" % call)
            with LOCK:
                return self.answer(200, fn(req, version))
        except B2Error as e:
            self.fail(e)

    # --- fault control ----------------------------------------------------------------
    def fake(self, what, req):
        with LOCK:
            if what == "expire_tokens":
                for t in STATE["tokens"]:
                    STATE["tokens"][t] = 0
            elif what == "fail":
                STATE["faults"].append({"call": req["call"], "status": req.get("status", 503),
                                        "count": req.get("count", 1), "retry_after": req.get("retry_after")})
            elif what == "cap_exceeded":
                STATE["cap"] = bool(req.get("on", True))
            elif what == "loop_listing":
                STATE["loop_listing"] = req.get("count", 1)
            elif what == "corrupt_download":
                STATE["corrupt"] = req.get("count", 1)
            elif what == "reset":
                STATE["faults"].clear()
                STATE["cap"] = False
                STATE["loop_listing"] = 0
                STATE["corrupt"] = 0
            else:
                raise B2Error(404, "not_found", "no such fault")
        self.answer(200, {})

    # --- calls ------------------------------------------------------------------------
    def authorize(self, version):
        self.count("b2_authorize_account")
        auth = self.headers.get("Authorization", "")
        want = "Basic " + base64.b64encode(("%s:%s" % (STATE["key_id"], STATE["key"])).encode()).decode()
        if auth != want:
            raise B2Error(401, "unauthorized", "invalid application key id or application key")
        tok = "acct-" + uuid.uuid4().hex
        with LOCK:
            STATE["tokens"][tok] = time.time() + STATE["ttl"]
        base = self.base()
        caps = ["listBuckets", "listFiles", "readFiles", "writeFiles", "deleteFiles", "writeBuckets"]
        if version >= 3:
            return self.answer(200, {
                "accountId": ACCOUNT, "authorizationToken": tok, "applicationKeyExpirationTimestamp": None,
                "apiInfo": {"storageApi": {"apiUrl": base, "downloadUrl": base, "s3ApiUrl": base,
                                           "recommendedPartSize": 100000000, "absoluteMinimumPartSize": 5000000,
                                           "allowed": {"buckets": None, "capabilities": caps, "namePrefix": None}}}})
        return self.answer(200, {
            "accountId": ACCOUNT, "authorizationToken": tok, "apiUrl": base, "downloadUrl": base,
            "recommendedPartSize": 100000000, "absoluteMinimumPartSize": 5000000,
            "allowed": {"bucketId": None, "bucketName": None, "capabilities": caps, "namePrefix": None}})

    def bucket(self, bucket_id):
        if bucket_id not in STATE["buckets"]:
            raise B2Error(400, "bad_request", "Invalid bucketId: %s" % bucket_id)
        return STATE["buckets"][bucket_id]

    def api_list_buckets(self, req, v):
        out = []
        for bid, b in STATE["buckets"].items():
            if req.get("bucketName") and req["bucketName"] != b["name"]:
                continue
            if req.get("bucketId") and req["bucketId"] != bid:
                continue
            out.append({"accountId": ACCOUNT, "bucketId": bid, "bucketName": b["name"], "bucketType": b["type"],
                        "bucketInfo": {}, "lifecycleRules": [], "revision": 1})
        return {"buckets": out}

    def api_create_bucket(self, req, v):
        name = req.get("bucketName", "")
        if any(b["name"] == name for b in STATE["buckets"].values()):
            raise B2Error(400, "duplicate_bucket_name", "Bucket name is already in use.")
        if not (6 <= len(name) <= 63):
            raise B2Error(400, "bad_request", "bucketName must be at least 6 characters long")
        bid = "b" + uuid.uuid4().hex[:23]
        STATE["buckets"][bid] = {"name": name, "type": req.get("bucketType", "allPrivate")}
        STATE["files"][bid] = {}
        return {"accountId": ACCOUNT, "bucketId": bid, "bucketName": name, "bucketType": req.get("bucketType")}

    def api_get_upload_url(self, req, v):
        self.bucket(req.get("bucketId"))
        tok = "up-" + uuid.uuid4().hex
        STATE["upload_urls"][tok] = [req["bucketId"], None, False]
        return {"bucketId": req["bucketId"], "uploadUrl": self.base() + "/upload/" + tok, "authorizationToken": tok}

    def api_get_upload_part_url(self, req, v):
        if req.get("fileId") not in STATE["large"]:
            raise B2Error(400, "bad_request", "No active upload for: %s" % req.get("fileId"))
        tok = "up-" + uuid.uuid4().hex
        STATE["upload_urls"][tok] = [STATE["large"][req["fileId"]]["bucketId"], req["fileId"], False]
        return {"fileId": req["fileId"], "uploadUrl": self.base() + "/upload/" + tok, "authorizationToken": tok}

    def visible(self, bid, prefix):
        for name in sorted(STATE["files"][bid]):
            if name.startswith(prefix):
                latest = STATE["files"][bid][name][0]
                if latest["action"] == "upload":
                    yield name, latest

    def api_list_file_names(self, req, v):
        bid = req.get("bucketId")
        self.bucket(bid)
        prefix = req.get("prefix", "") or ""
        delim = req.get("delimiter")
        start = req.get("startFileName") or ""
        maxn = min(int(req.get("maxFileCount", 100)), 10000)
        out, folders, nxt = [], set(), None
        for name, latest in self.visible(bid, prefix):
            if name < start:
                continue
            entry_name, is_folder = name, False
            if delim:
                rest = name[len(prefix):]
                i = rest.find(delim)
                if i >= 0:
                    entry_name, is_folder = prefix + rest[:i + 1], True
            if is_folder:
                if entry_name in folders or entry_name < start:
                    continue
                folders.add(entry_name)
            if len(out) == maxn:
                nxt = entry_name
                break
            if is_folder:
                out.append({"accountId": ACCOUNT, "action": "folder", "bucketId": bid, "contentLength": 0,
                            "size": 0, "contentSha1": None, "contentType": None, "fileId": None, "fileInfo": {},
                            "fileName": entry_name, "uploadTimestamp": 0})
            else:
                out.append(file_json(bid, latest, v))
        if nxt is not None and delim and nxt.endswith(delim) and nxt in folders:
            # the next page starts after everything in that folder
            pass
        if STATE["loop_listing"] > 0:
            STATE["loop_listing"] -= 1
            nxt = start or (out[0]["fileName"] if out else "loop")
        return {"files": out, "nextFileName": nxt}

    def api_hide_file(self, req, v):
        bid = req.get("bucketId")
        self.bucket(bid)
        versions = STATE["files"][bid].get(req.get("fileName", ""))
        if not versions:
            raise B2Error(404, "no_such_file", "File not present: %s" % req.get("fileName"))
        if versions[0]["action"] == "hide":
            raise B2Error(400, "already_hidden", "File already hidden: %s" % req.get("fileName"))
        h = {"id": "4_z" + uuid.uuid4().hex, "name": req["fileName"], "action": "hide", "data": b"",
             "sha1": "none", "info": {}, "ctype": "application/x-bz-hide-marker", "ts": now_ms()}
        versions.insert(0, h)
        return file_json(bid, h, v)

    def find_version(self, file_id):
        for bid, names in STATE["files"].items():
            for name, versions in names.items():
                for ver in versions:
                    if ver["id"] == file_id:
                        return bid, name, versions, ver
        return None

    def api_delete_file_version(self, req, v):
        found = self.find_version(req.get("fileId"))
        if not found or found[1] != req.get("fileName"):
            raise B2Error(400, "file_not_present", "File not present: %s %s" % (req.get("fileName"), req.get("fileId")))
        bid, name, versions, ver = found
        versions.remove(ver)
        if not versions:
            del STATE["files"][bid][name]
        return {"fileId": ver["id"], "fileName": name}

    def api_copy_file(self, req, v):
        found = self.find_version(req.get("sourceFileId"))
        if not found:
            raise B2Error(400, "bad_request", "source file not found")
        bid, _, _, src = found
        dbid = req.get("destinationBucketId") or bid
        if req.get("metadataDirective", "COPY") == "REPLACE":
            info, ctype = req.get("fileInfo") or {}, req.get("contentType") or "b2/x-auto"
        else:
            info, ctype = dict(src["info"]), src["ctype"]
        new = {"id": "4_z" + uuid.uuid4().hex, "name": req["fileName"], "action": "upload", "data": src["data"],
               "sha1": hashlib.sha1(src["data"]).hexdigest() if src["sha1"] != "none" else "none",
               "info": info, "ctype": ctype, "ts": now_ms()}
        STATE["files"][dbid].setdefault(req["fileName"], []).insert(0, new)
        return file_json(dbid, new, v)

    def api_start_large_file(self, req, v):
        bid = req.get("bucketId")
        self.bucket(bid)
        fid = "4_z" + uuid.uuid4().hex
        STATE["large"][fid] = {"bucketId": bid, "name": req["fileName"], "info": req.get("fileInfo") or {},
                               "ctype": req.get("contentType", "b2/x-auto"), "parts": {}, "ts": now_ms()}
        return {"accountId": ACCOUNT, "action": "start", "bucketId": bid, "contentLength": 0, "contentSha1": "none",
                "contentType": req.get("contentType"), "fileId": fid, "fileInfo": req.get("fileInfo") or {},
                "fileName": req["fileName"], "uploadTimestamp": STATE["large"][fid]["ts"]}

    def api_list_parts(self, req, v):
        lf = STATE["large"].get(req.get("fileId"))
        if lf is None:
            raise B2Error(400, "bad_request", "No such file: %s" % req.get("fileId"))
        start = int(req.get("startPartNumber") or 1)
        parts = [{"fileId": req["fileId"], "partNumber": n, "contentLength": len(d), "contentSha1": s}
                 for n, (s, d) in sorted(lf["parts"].items()) if n >= start]
        return {"parts": parts, "nextPartNumber": None}

    def api_list_unfinished_large_files(self, req, v):
        bid = req.get("bucketId")
        self.bucket(bid)
        prefix = req.get("namePrefix") or ""
        files = [{"accountId": ACCOUNT, "action": "start", "bucketId": bid, "fileId": fid, "fileName": lf["name"],
                  "fileInfo": lf["info"], "contentType": lf["ctype"], "uploadTimestamp": lf["ts"]}
                 for fid, lf in STATE["large"].items() if lf["bucketId"] == bid and lf["name"].startswith(prefix)]
        return {"files": files, "nextFileId": None}

    def api_cancel_large_file(self, req, v):
        lf = STATE["large"].pop(req.get("fileId"), None)
        if lf is None:
            raise B2Error(400, "bad_request", "No active upload for: %s" % req.get("fileId"))
        return {"accountId": ACCOUNT, "bucketId": lf["bucketId"], "fileId": req["fileId"], "fileName": lf["name"]}

    def api_finish_large_file(self, req, v):
        fid = req.get("fileId")
        lf = STATE["large"].get(fid)
        if lf is None:
            raise B2Error(400, "bad_request", "No active upload for: %s" % fid)
        want = req.get("partSha1Array") or []
        if len(want) != len(lf["parts"]) or not want:
            raise B2Error(400, "bad_request", "Part count mismatch: %d given, %d uploaded" % (len(want), len(lf["parts"])))
        data = b""
        for i, sha in enumerate(want, 1):
            if i not in lf["parts"] or lf["parts"][i][0] != sha:
                raise B2Error(400, "bad_request", "Part %d sha1 mismatch" % i)
            if i < len(want) and len(lf["parts"][i][1]) < 5000000 and len(lf["parts"][i][1]) < STATE.get("min_part", 5000000):
                raise B2Error(400, "bad_request", "Part %d is smaller than the minimum part size" % i)
            data += lf["parts"][i][1]
        del STATE["large"][fid]
        new = {"id": fid, "name": lf["name"], "action": "upload", "data": data, "sha1": "none",
               "info": lf["info"], "ctype": lf["ctype"], "ts": now_ms()}
        STATE["files"][lf["bucketId"]].setdefault(lf["name"], []).insert(0, new)
        return file_json(lf["bucketId"], new, v)

    # --- data -------------------------------------------------------------------------
    def upload(self, tok):
        self.count("upload")
        raw = self.body()
        with LOCK:
            slot = STATE["upload_urls"].get(tok)
            if slot is None or self.headers.get("Authorization") != tok:
                raise B2Error(401, "bad_auth_token", "Invalid upload authorization token")
            if slot[2]:
                raise B2Error(400, "bad_request", "another upload is in progress on this URL")
        try:
            take_fault("upload")
        except B2Error:
            with LOCK:
                STATE["upload_urls"].pop(tok, None)  # a failed URL is dead: get a new one
            raise
        if STATE["cap"]:
            raise B2Error(403, "cap_exceeded", "Cannot upload files, storage cap exceeded.")
        bid, large_id, _ = slot
        sha = self.headers.get("X-Bz-Content-Sha1", "")
        if sha == "hex_digits_at_end":
            raw, sha = raw[:-40], raw[-40:].decode("ascii", "replace")
        elif sha in ("do_not_verify", "unverified:do_not_verify"):
            sha = hashlib.sha1(raw).hexdigest()
        if not sha:
            raise B2Error(400, "bad_request", "Missing header: X-Bz-Content-Sha1")
        if hashlib.sha1(raw).hexdigest() != sha.lower():
            raise B2Error(400, "bad_request", "Sha1 did not match data received")
        with LOCK:
            if large_id is not None:
                lf = STATE["large"].get(large_id)
                if lf is None:
                    raise B2Error(400, "bad_request", "No active upload for: %s" % large_id)
                n = int(self.headers.get("X-Bz-Part-Number", "0"))
                if not 1 <= n <= 10000:
                    raise B2Error(400, "bad_request", "bad part number")
                lf["parts"][n] = (sha.lower(), raw)
                return self.answer(200, {"fileId": large_id, "partNumber": n, "contentLength": len(raw),
                                         "contentSha1": sha.lower()})
            name = urllib.parse.unquote(self.headers.get("X-Bz-File-Name", ""))
            if not name:
                raise B2Error(400, "bad_request", "Missing header: X-Bz-File-Name")
            info = {}
            for k, val in self.headers.items():
                if k.lower().startswith("x-bz-info-"):
                    info[k[len("x-bz-info-"):].lower()] = urllib.parse.unquote(val)
            new = {"id": "4_z" + uuid.uuid4().hex, "name": name, "action": "upload", "data": raw,
                   "sha1": sha.lower(), "info": info, "ctype": self.headers.get("Content-Type", "b2/x-auto"),
                   "ts": now_ms()}
            STATE["files"][bid].setdefault(name, []).insert(0, new)
            return self.answer(200, file_json(bid, new, 2))

    def download(self, bucket=None, name=None, by_id=None):
        self.count("download")
        self.account_token()
        take_fault("download")
        with LOCK:
            if by_id:
                found = self.find_version(by_id)
                if not found or found[3]["action"] != "upload":
                    raise B2Error(404, "not_found", "file not found: %s" % by_id)
                ver = found[3]
            else:
                bid = next((i for i, b in STATE["buckets"].items() if b["name"] == bucket), None)
                if bid is None:
                    raise B2Error(404, "not_found", "bucket not found: %s" % bucket)
                versions = STATE["files"][bid].get(name)
                if not versions or versions[0]["action"] != "upload":
                    raise B2Error(404, "not_found", "file not found: %s" % name)
                ver = versions[0]
            data = ver["data"]
            corrupt = STATE["corrupt"] > 0
            if corrupt:
                STATE["corrupt"] -= 1
        headers = {"Content-Type": ver["ctype"], "X-Bz-File-Id": ver["id"],
                   "X-Bz-File-Name": urllib.parse.quote(ver["name"]), "X-Bz-Content-Sha1": ver["sha1"],
                   "X-Bz-Upload-Timestamp": str(ver["ts"]), "Accept-Ranges": "bytes"}
        for k, val in ver["info"].items():
            headers["X-Bz-Info-" + k] = urllib.parse.quote(val)
        status = 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[len("bytes="):].partition("-")
            a = int(a)
            b = int(b) if b else len(data) - 1
            b = min(b, len(data) - 1)
            if a > b:
                raise B2Error(416, "range_not_satisfiable", "bad range")
            headers["Content-Range"] = "bytes %d-%d/%d" % (a, b, len(data))
            data, status = data[a:b + 1], 206
        if corrupt and data:
            data = bytes([data[0] ^ 1]) + data[1:]
        self.answer(status, raw=data, headers=headers)


def main():
    args = sys.argv[1:]
    port = int(args[0])
    i = 1
    while i < len(args):
        if args[i] == "--key-id":
            STATE["key_id"] = args[i + 1]
        elif args[i] == "--key":
            STATE["key"] = args[i + 1]
        elif args[i] == "--token-ttl":
            STATE["ttl"] = float(args[i + 1])
        elif args[i] == "--min-part":
            STATE["min_part"] = int(args[i + 1])
        i += 2
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    srv.serve_forever()


if __name__ == "__main__":
    main()
