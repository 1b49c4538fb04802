#!/usr/bin/env python3
"""A Nextcloud WebDAV endpoint on loopback, written from Nextcloud's client API docs
(WebDAV basics, chunked upload v1, X-OC-Mtime, OC-Checksum, X-Recalculate-Hash) and the
error bodies Sabre sends. No Nextcloud server is on this machine's registries; this fake
stands in for what cloudsync relies on:

  /remote.php/dav/files/USER/...    the user's files (and the legacy /remote.php/webdav/)
  /remote.php/dav/uploads/USER/...  chunked upload collections: PUT chunks, MOVE .file

Behaviour copied from Nextcloud: checksums are stored only when a client supplies one
(OC-Checksum on PUT or on the final MOVE) or asks for one (PATCH X-Recalculate-Hash);
setting the modification time with PROPPATCH drops the stored checksum; MKCOL answers 405
on an existing collection and 409 without a parent; a PUT past the quota answers 507.

Test controls (not Nextcloud): POST /control?lock_merges=N makes the next N final MOVEs
answer 423 Locked while the file is assembled in the background (as a slow Nextcloud
does); POST /control?folder=F&quota=BYTES gives folder F a quota (-1 none).

Usage: nextcloud.py ROOT PORT USER PASSWORD
"""

import base64
import email.utils
import hashlib
import os
import shutil
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

ROOT, PORT, USER, PASSWORD = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
FILES = os.path.join(ROOT, "files")
UPLOADS = os.path.join(ROOT, "uploads")
os.makedirs(FILES, exist_ok=True)
os.makedirs(UPLOADS, exist_ok=True)

LOCK = threading.Lock()
CHECKSUMS = {}  # file path (bytes) -> "SHA1:<hex>" as Nextcloud stores it
STATE = {"lock_merges": 0, "quotas": {}}  # folder (bytes, below the user's files) -> bytes

SABRE = (
    '<?xml version="1.0" encoding="utf-8"?>\n<d:error xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns">\n'
    "  <s:exception>Sabre\\DAV\\Exception\\{exc}</s:exception>\n  <s:message>{msg}</s:message>\n</d:error>\n"
)


def used_bytes(top):
    total = 0
    for dirpath, _, names in os.walk(top):
        for n in names:
            total += os.path.getsize(os.path.join(dirpath, n))
    return total


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def parse_request(self):
        self._consumed = False  # one handler serves every request of a kept-alive connection
        return super().parse_request()

    # ---- plumbing -------------------------------------------------------------------

    def send(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status, exc, msg, headers=()):
        self.drain()
        body = SABRE.format(exc=exc, msg=escape(msg)).encode()
        self.send(status, body, [("Content-Type", "application/xml; charset=utf-8"), *headers])

    def drain(self):
        if getattr(self, "_consumed", False):
            return
        self._consumed = True
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            while True:  # a chunked body, read to its last chunk
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return
                self.rfile.read(size + 2)
        n = int(self.headers.get("Content-Length") or 0)
        while n > 0:
            chunk = self.rfile.read(min(n, 1 << 16))
            if not chunk:
                break
            n -= len(chunk)

    def body(self):
        if getattr(self, "_consumed", False):
            return b""
        self._consumed = True
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def authorized(self):
        want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") == want:
            return True
        self.error(
            401,
            "NotAuthenticated",
            "No public access to this resource., Username or password was incorrect, No 'Authorization: Bearer' "
            "header found. Either the client didn't send one, or the server didn't accept it",
            [("WWW-Authenticate", 'Basic realm="Nextcloud", charset="UTF-8"')],
        )
        return False

    def resolve(self, url_path):
        """(area, local path, href prefix) of a request path, or None."""
        raw = urllib.parse.urlsplit(url_path).path
        for prefix, area in (
            (f"/remote.php/dav/files/{USER}", FILES),
            ("/remote.php/webdav", FILES),
            (f"/remote.php/dav/uploads/{USER}", UPLOADS),
        ):
            if raw == prefix or raw.startswith(prefix + "/"):
                rest = urllib.parse.unquote_to_bytes(raw[len(prefix):]).strip(b"/")
                if any(seg in (b"..", b".") for seg in rest.split(b"/")):
                    return None
                local = os.path.join(os.fsencode(area), rest) if rest else os.fsencode(area)
                return area, local, prefix, rest
        return None

    def begin(self):
        """The request's target once its credentials passed; None when answered already."""
        if not self.authorized():
            return None
        return self.target()

    def target(self):
        r = self.resolve(self.path)
        if r is None:
            self.error(404, "NotFound", "File not found in the tree")
        return r

    # ---- methods --------------------------------------------------------------------

    def do_POST(self):
        if self.path.startswith("/control"):
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            if "lock_merges" in q:
                STATE["lock_merges"] = int(q["lock_merges"][0])
            if "quota" in q:
                folder = os.path.join(os.fsencode(FILES), os.fsencode(q.get("folder", [""])[0]))
                if int(q["quota"][0]) < 0:
                    STATE["quotas"].pop(folder, None)
                else:
                    STATE["quotas"][folder] = int(q["quota"][0])
            self.drain()
            return self.send(204)
        self.error(405, "MethodNotAllowed", "POST is not allowed here")

    def do_PROPFIND(self):
        t = self.begin()
        if t is None:
            return
        area, local, prefix, rest = t
        self.body()
        if not os.path.lexists(local):
            return self.error(404, "NotFound", f"File with name {os.fsdecode(rest)} could not be located")
        depth = self.headers.get("Depth", "1")
        items = [(local, rest)]
        if depth != "0" and os.path.isdir(local):
            for name in sorted(os.listdir(local)):
                if name.endswith(b".ncpart") if isinstance(name, bytes) else name.endswith(".ncpart"):
                    continue  # an upload in progress is not in Nextcloud's file cache
                items.append((os.path.join(local, name), (rest + b"/" if rest else b"") + name))
        out = ['<?xml version="1.0"?>\n<d:multistatus xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns" '
               'xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns">']
        for path, rel in items:
            st = os.stat(path)
            is_dir = os.path.isdir(path)
            href = prefix + "/" + urllib.parse.quote(rel, safe="/") + ("/" if is_dir and rel else "")
            if is_dir and not rel:
                href = prefix + "/"
            props = [f"<d:getlastmodified>{email.utils.formatdate(st.st_mtime, usegmt=True)}</d:getlastmodified>",
                     f'<d:getetag>"{int(st.st_mtime)}-{st.st_size}"</d:getetag>']
            missing = []
            if is_dir:
                props.append("<d:resourcetype><d:collection/></d:resourcetype>")
                missing.append("<d:getcontentlength/>")
            else:
                props.append("<d:resourcetype/>")
                props.append(f"<d:getcontentlength>{st.st_size}</d:getcontentlength>")
            with LOCK:
                sum_ = CHECKSUMS.get(path) if area == FILES else None
            if sum_:
                props.append(f"<oc:checksums><oc:checksum>{sum_}</oc:checksum></oc:checksums>")
            else:
                missing.append("<oc:checksums/>")
            out.append(f"<d:response><d:href>{escape(href)}</d:href><d:propstat><d:prop>{''.join(props)}</d:prop>"
                       "<d:status>HTTP/1.1 200 OK</d:status></d:propstat>")
            if missing:
                out.append(f"<d:propstat><d:prop>{''.join(missing)}</d:prop>"
                           "<d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>")
            out.append("</d:response>")
        out.append("</d:multistatus>")
        self.send(207, "".join(out).encode(), [("Content-Type", "application/xml; charset=utf-8")])

    def do_GET(self):
        t = self.begin()
        if t is None:
            return
        _, local, _, rest = t
        if not os.path.isfile(local):
            return self.error(404, "NotFound", f"File with name {os.fsdecode(rest)} could not be located")
        size = os.path.getsize(local)
        start, end, status = 0, size - 1, 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            start = int(a) if a else max(0, size - int(b))
            end = min(int(b), size - 1) if a and b else size - 1
            if start >= size:
                return self.send(416, b"", [("Content-Range", f"bytes */{size}")])
            status = 206
        with open(local, "rb") as f:
            f.seek(start)
            data = f.read(end - start + 1) if size else b""
        h = [("Content-Type", "application/octet-stream"), ("Accept-Ranges", "bytes")]
        if status == 206:
            h.append(("Content-Range", f"bytes {start}-{end}/{size}"))
        self.send(status, data, h)

    def do_PUT(self):
        t = self.begin()
        if t is None:
            return
        area, local, _, rest = t
        parent = os.path.dirname(local)
        if not os.path.isdir(parent):
            return self.error(409, "Conflict", "Files can only be created as children of collections")
        if os.path.isdir(local):
            return self.error(405, "MethodNotAllowed", "A collection exists at this address")
        n = int(self.headers.get("Content-Length") or 0)
        for folder, quota in list(STATE["quotas"].items()):
            if local.startswith(folder + b"/") and used_bytes(folder) + n > quota:
                return self.error(507, "InsufficientStorage", "Insufficient space in the target folder")
        tmp = local + b".ncpart"
        self._consumed = True
        with open(tmp, "wb") as f:
            left = n
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 16))
                if not chunk:
                    os.unlink(tmp)
                    return  # the client went away: nothing is stored
                f.write(chunk)
                left -= len(chunk)
        existed = os.path.exists(local)
        os.replace(tmp, local)
        headers = [("ETag", '"e%d"' % time.time_ns()), ("OC-FileId", "00000001oc")]
        if area == FILES:
            self.apply_mtime(local, headers)
            with LOCK:
                CHECKSUMS.pop(local, None)
                if self.headers.get("OC-Checksum"):
                    CHECKSUMS[local] = self.headers["OC-Checksum"].strip()
        self.send(204 if existed else 201, b"", headers)

    def apply_mtime(self, local, headers):
        m = self.headers.get("X-OC-Mtime")
        if m:
            t = int(float(m))
            os.utime(local, (t, t))
            headers.append(("X-OC-MTime", "accepted"))

    def do_MKCOL(self):
        t = self.begin()
        if t is None:
            return
        _, local, _, _ = t
        self.drain()
        if os.path.lexists(local):
            return self.error(405, "MethodNotAllowed", "The resource you tried to create already exists")
        if not os.path.isdir(os.path.dirname(local)):
            return self.error(409, "Conflict", "Parent node does not exist")
        os.mkdir(local)
        self.send(201)

    def do_DELETE(self):
        t = self.begin()
        if t is None:
            return
        _, local, _, rest = t
        self.drain()
        if not os.path.lexists(local):
            return self.error(404, "NotFound", f"File with name {os.fsdecode(rest)} could not be located")
        if os.path.isdir(local):
            shutil.rmtree(local)
        else:
            os.unlink(local)
        with LOCK:
            for k in [k for k in CHECKSUMS if k == local or k.startswith(local + b"/")]:
                del CHECKSUMS[k]
        self.send(204)

    def do_MOVE(self):
        t = self.begin()
        if t is None:
            return
        area, local, _, rest = t
        self.drain()
        dest = self.resolve(self.headers.get("Destination", ""))
        if dest is None or dest[0] != FILES:
            return self.error(502, "BadGateway", "The destination is not on this server")
        dlocal = dest[1]
        if not os.path.isdir(os.path.dirname(dlocal)):
            return self.error(409, "Conflict", "The destination node is not found")
        existed = os.path.exists(dlocal)
        if existed and self.headers.get("Overwrite", "T").upper() == "F":
            return self.error(412, "PreconditionFailed", "The destination node already exists")
        headers = []
        if area == UPLOADS and rest.endswith(b"/.file"):
            chunks_dir = local[: -len(b"/.file")]
            if not os.path.isdir(chunks_dir):
                return self.error(404, "NotFound", "Upload not found")
            checksum = self.headers.get("OC-Checksum")
            mtime = self.headers.get("X-OC-Mtime")
            if STATE["lock_merges"] > 0:
                STATE["lock_merges"] -= 1
                threading.Thread(target=self.assemble, args=(chunks_dir, dlocal, checksum, mtime, 1.5)).start()
                return self.error(423, "Locked", f'"{os.fsdecode(rest)}" is locked')
            self.assemble(chunks_dir, dlocal, checksum, mtime, 0)
            if mtime:
                headers.append(("X-OC-MTime", "accepted"))
            return self.send(204 if existed else 201, b"", headers)
        if not os.path.lexists(local):
            return self.error(404, "NotFound", f"File with name {os.fsdecode(rest)} could not be located")
        if existed and os.path.isdir(dlocal):
            shutil.rmtree(dlocal)
        os.replace(local, dlocal)
        with LOCK:
            if local in CHECKSUMS:
                CHECKSUMS[dlocal] = CHECKSUMS.pop(local)
            else:
                CHECKSUMS.pop(dlocal, None)
        self.apply_mtime(dlocal, headers)
        self.send(204 if existed else 201, b"", headers)

    @staticmethod
    def assemble(chunks_dir, dlocal, checksum, mtime, delay):
        time.sleep(delay)
        tmp = dlocal + b".ncpart"
        with open(tmp, "wb") as out:
            for name in sorted(os.listdir(chunks_dir)):
                with open(os.path.join(chunks_dir, name), "rb") as f:
                    shutil.copyfileobj(f, out)
        if mtime:
            os.utime(tmp, (int(mtime), int(mtime)))
        os.replace(tmp, dlocal)
        shutil.rmtree(chunks_dir)
        with LOCK:
            CHECKSUMS.pop(dlocal, None)
            if checksum:
                CHECKSUMS[dlocal] = checksum.strip()

    def do_PROPPATCH(self):
        t = self.begin()
        if t is None:
            return
        _, local, prefix, rest = t
        body = self.body().decode("utf-8", "replace")
        if not os.path.lexists(local):
            return self.error(404, "NotFound", f"File with name {os.fsdecode(rest)} could not be located")
        import re

        m = re.search(r"<(?:\w+:)?lastmodified[^>]*>\s*(\d+)\s*<", body)
        status = "HTTP/1.1 403 Forbidden"
        if m:
            t_ = int(m.group(1))
            os.utime(local, (t_, t_))
            with LOCK:
                CHECKSUMS.pop(local, None)  # Nextcloud forgets the checksum with the time
            status = "HTTP/1.1 200 OK"
        href = prefix + "/" + urllib.parse.quote(rest, safe="/")
        out = ('<?xml version="1.0"?>\n<d:multistatus xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns">'
               f"<d:response><d:href>{escape(href)}</d:href><d:propstat><d:prop><d:lastmodified/></d:prop>"
               f"<d:status>{status}</d:status></d:propstat></d:response></d:multistatus>")
        self.send(207, out.encode(), [("Content-Type", "application/xml; charset=utf-8")])

    def do_PATCH(self):
        t = self.begin()
        if t is None:
            return
        _, local, _, rest = t
        self.drain()
        kind = (self.headers.get("X-Recalculate-Hash") or "").lower()
        if kind not in ("sha1", "md5"):
            return self.error(400, "BadRequest", "Unsupported hash type")
        if not os.path.isfile(local):
            return self.error(404, "NotFound", f"File with name {os.fsdecode(rest)} could not be located")
        h = hashlib.new(kind)
        with open(local, "rb") as f:
            for block in iter(lambda: f.read(1 << 16), b""):
                h.update(block)
        value = f"{kind.upper()}:{h.hexdigest()}"
        with LOCK:
            CHECKSUMS[local] = value
        self.send(200, b"", [("OC-Checksum", value)])


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    server.serve_forever()
