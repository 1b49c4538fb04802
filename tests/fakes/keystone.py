#!/usr/bin/env python3
"""A Keystone identity service for tests (v2.0 and v3 token requests), in front of a
Swift proxy with tempauth: it checks the credentials as Keystone would (user name and
domain or user id, password or application credential, project scope), then hands out a
real tempauth token with a service catalog whose object-store endpoint is the proxy.

Usage: keystone.py PORT SWIFT_PROXY_URL
Accepted: user "tester" (id "u-tester") in domain "Default", password "testing", project
"test" (id "p-test"); application credential id "ac-id" (name "ac-name") secret "ac-secret".
"""

import json
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def tempauth():
    req = urllib.request.Request(PROXY + "/auth/v1.0", headers={"X-Auth-User": "test:tester", "X-Auth-Key": "testing"})
    with urllib.request.urlopen(req) as r:
        return r.headers["X-Auth-Token"], r.headers["X-Storage-Url"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def unauthorized(self):
        self.answer(401, {"error": {"code": 401, "title": "Unauthorized",
                                    "message": "The request you have made requires authentication."}})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(n))
        except ValueError:
            return self.answer(400, {"error": {"code": 400, "message": "Malformed request body"}})
        if self.path.rstrip("/").endswith("/v2.0/tokens"):
            return self.v2(body)
        if self.path.rstrip("/").endswith("/v3/auth/tokens"):
            return self.v3(body)
        self.answer(404, {"error": {"code": 404, "message": "not found"}})

    def v2(self, body):
        a = body.get("auth", {})
        pc = a.get("passwordCredentials", {})
        if pc.get("username") != "tester" or pc.get("password") != "testing":
            return self.unauthorized()
        if a.get("tenantName", "test") != "test" and a.get("tenantId") != "p-test":
            return self.unauthorized()
        token, url = tempauth()
        eps = [{"region": "RegionOne", "publicURL": url, "internalURL": url, "adminURL": url}]
        self.answer(200, {"access": {"token": {"id": token}, "serviceCatalog": [
            {"type": "identity", "endpoints": []}, {"type": "object-store", "name": "swift", "endpoints": eps}]}})

    def v3(self, body):
        ident = body.get("auth", {}).get("identity", {})
        methods = ident.get("methods", [])
        if methods == ["password"]:
            user = ident.get("password", {}).get("user", {})
            if user.get("id") != "u-tester":
                if user.get("name") != "tester":
                    return self.unauthorized()
                if "domain" not in user:
                    return self.answer(400, {"error": {"code": 400, "title": "Bad Request",
                                                       "message": "Expecting to find domain in user."}})
                if user["domain"].get("name") != "Default":
                    return self.unauthorized()
            if user.get("password") != "testing":
                return self.unauthorized()
        elif methods == ["application_credential"]:
            ac = ident.get("application_credential", {})
            if ac.get("secret") != "ac-secret" or (ac.get("id") != "ac-id" and ac.get("name") != "ac-name"):
                return self.unauthorized()
        else:
            return self.answer(400, {"error": {"code": 400, "message": "unsupported methods"}})
        scope = body.get("auth", {}).get("scope", {}).get("project")
        if scope is not None and scope.get("id") != "p-test" and scope.get("name") != "test":
            return self.unauthorized()
        token, url = tempauth()
        eps = [{"interface": i, "region": "RegionOne", "region_id": "RegionOne", "url": url}
               for i in ("public", "internal", "admin")]
        self.answer(201, {"token": {"expires_at": "2099-01-01T00:00:00.000000Z", "catalog": [
            {"type": "identity", "endpoints": []}, {"type": "object-store", "name": "swift", "endpoints": eps}]}},
            headers={"X-Subject-Token": token})


if __name__ == "__main__":
    port, PROXY = int(sys.argv[1]), sys.argv[2].rstrip("/")
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    srv.serve_forever()
