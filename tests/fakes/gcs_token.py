#!/usr/bin/env python3
"""Google's OAuth 2 token endpoint for service accounts, for tests: checks the JWT bearer
assertion (RS256 signature against the service account's public key, iss, aud, scope,
iat/exp) and answers an access token as Google does ({access_token, expires_in,
token_type}), or Google's error body ({"error": "invalid_grant", ...}).

Usage: gcs_token.py PORT PUBKEY.json [--expires-in SECONDS]
GET /_fake/stats answers {"tokens": N}.
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

STATE = {"tokens": 0, "expires_in": 3599}
LOCK = threading.Lock()
# DER of the SHA-256 DigestInfo prefix (PKCS#1 v1.5, RFC 8017 §9.2).
SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify_rs256(signing_input, sig, n, e):
    k = (n.bit_length() + 7) // 8
    m = pow(int.from_bytes(sig, "big"), e, n).to_bytes(k, "big")
    digest = hashlib.sha256(signing_input).digest()
    expected = b"\x00\x01" + b"\xff" * (k - 3 - len(SHA256_PREFIX) - len(digest)) + b"\x00" + SHA256_PREFIX + digest
    return m == expected


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        with LOCK:
            self.answer(200, {"tokens": STATE["tokens"]})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(n).decode())
        bad = lambda why: self.answer(400, {"error": "invalid_grant", "error_description": why})
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return self.answer(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"})
        parts = form.get("assertion", [""])[0].split(".")
        if len(parts) != 3:
            return bad("Invalid JWT")
        try:
            header, claims = json.loads(b64url(parts[0])), json.loads(b64url(parts[1]))
            sig = b64url(parts[2])
        except ValueError:
            return bad("Invalid JWT")
        if header.get("alg") != "RS256":
            return bad("Invalid JWT: alg")
        if not verify_rs256((parts[0] + "." + parts[1]).encode(), sig, PUB[0], PUB[1]):
            return bad("Invalid JWT Signature.")
        now = time.time()
        aud = "http://%s%s" % (self.headers.get("Host"), self.path)
        if claims.get("aud") != aud:
            return bad("Invalid JWT: aud %r is not %r" % (claims.get("aud"), aud))
        if "devstorage" not in claims.get("scope", ""):
            return bad("Invalid JWT: scope")
        if not (claims.get("iat", 0) - 300 <= now <= claims.get("exp", 0)) or claims["exp"] - claims["iat"] > 3600:
            return bad("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.")
        if not claims.get("iss"):
            return bad("Invalid JWT: iss")
        with LOCK:
            STATE["tokens"] += 1
        self.answer(200, {"access_token": "ya29." + uuid.uuid4().hex, "expires_in": STATE["expires_in"],
                          "token_type": "Bearer"})


def main():
    global PUB
    port, pub = int(sys.argv[1]), json.load(open(sys.argv[2]))
    PUB = (int(pub["n"], 16), int(pub["e"], 16))
    if "--expires-in" in sys.argv:
        STATE["expires_in"] = int(sys.argv[sys.argv.index("--expires-in") + 1])
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    srv.serve_forever()


if __name__ == "__main__":
    main()
