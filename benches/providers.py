#!/usr/bin/env python3
"""cloudsync against rclone 1.75 on each bucket provider's loopback server, on the same
data, in one run: Azure Blob (Azurite), Backblaze B2 (tests/fakes/b2.py), Google Cloud
Storage (fake-gcs-server), OpenStack Swift (the real servers, tests/fakes/swift_saio.py) and
WebDAV (rclone serve webdav as a Nextcloud-like server; WsgiDAV for vendor "other") and
FTP (vsftpd and pure-ftpd) and SFTP (OpenSSH's sshd), as root: they log in the local
account csync-ftp that scripts/setup-deps creates.

Run through scripts/bench-providers (it installs the servers and builds cloudsync first).

Scenarios, per provider (the tools alternate which runs first on each repetition):
  a  push 2,000 files / 200 MiB into an empty location
  b  no-op re-sync of the same (cloudsync reuses the index of its run of a)
  d  pull the 2,000 files back into an empty directory

Each tool run is a child of benches/measure.c (wall time, user+sys CPU, peak RSS by
wait4). Requests: cloudsync reports its own (--json); rclone's are counted from its
--dump headers output in a separate, unmeasured run of the same command (dumping costs
rclone CPU, so it never runs under the clock). Pulled trees are checked against the
source (names, sizes, MD5, modification times to the provider's precision).

It reports; it exits 1 only when a tool failed or a result did not verify.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (gen_tree, md5_file, walk_files)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.environ.get("CLOUDSYNC_TOOLS", os.path.expanduser("~/.cache/cloudsync/tools"))
AZ_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, what, secs=90):
    deadline = time.time() + secs
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{what} did not start")


class Servers:
    """Every server, started once; killed at exit."""

    def __init__(self, work):
        self.procs = []
        self.work = work

    def spawn(self, argv, port, what, **kw):
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        wait_port(port, what)
        return p

    def stop(self):
        for p in self.procs:
            p.kill()

    def azure(self):
        port = free_port()
        self.spawn([os.path.join(TOOLS, "azurite-3.37.0/node_modules/.bin/azurite-blob"), "--blobHost", "127.0.0.1",
                    "--blobPort", str(port), "--inMemoryPersistence", "--skipApiVersionCheck", "--loose", "--silent"],
                   port, "Azurite")
        ep = f"http://127.0.0.1:{port}/devstoreaccount1"
        cred = {"type": "AZUREBLOB", "account": "devstoreaccount1", "key": AZ_KEY, "endpoint": ep}
        rc = {"TYPE": "azureblob", "ACCOUNT": "devstoreaccount1", "KEY": AZ_KEY, "ENDPOINT": ep}
        return cred, rc, {}, 1

    def b2(self):
        port = free_port()
        self.spawn([sys.executable, os.path.join(ROOT, "tests/fakes/b2.py"), str(port), "--key-id", "bench-id",
                    "--key", "bench-key"], port, "the B2 fake")
        ep = f"http://127.0.0.1:{port}"
        cred = {"type": "B2", "account": "bench-id", "key": "bench-key"}
        rc = {"TYPE": "b2", "ACCOUNT": "bench-id", "KEY": "bench-key", "ENDPOINT": ep}
        return cred, rc, {"CLOUDSYNC_B2_ENDPOINT": ep}, 1_000_000

    def gcs(self):
        port, tport = free_port(), free_port()
        self.spawn([os.path.join(TOOLS, "fake-gcs-server-1.52/fake-gcs-server"), "-scheme", "http", "-host",
                    "127.0.0.1", "-port", str(port), "-backend", "memory", "-external-url",
                    f"http://127.0.0.1:{port}", "-log-level", "error"], port, "fake-gcs-server")
        self.spawn([sys.executable, os.path.join(ROOT, "tests/fakes/gcs_token.py"), str(tport),
                    os.path.join(ROOT, "tests/fixtures/gcs-service-account.pub.json")], tport, "the token endpoint")
        sa = json.load(open(os.path.join(ROOT, "tests/fixtures/gcs-service-account.json")))
        sa["token_uri"] = f"http://127.0.0.1:{tport}/token"
        cred = {"type": "GOOGLE_CLOUD_STORAGE", "service_account_credentials": json.dumps(sa)}
        rc = {"TYPE": "google cloud storage", "ANONYMOUS": "true", "ENDPOINT": f"http://127.0.0.1:{port}/storage/v1/"}
        return cred, rc, {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}"}, 1

    def swift(self):
        port = free_port()
        d = tempfile.mkdtemp(prefix="swift-", dir=self.work)
        self.spawn([os.path.join(TOOLS, "swift-2.38.3/bin/python"), os.path.join(ROOT, "tests/fakes/swift_saio.py"),
                    d, str(port)], port, "Swift")
        auth = f"http://127.0.0.1:{port}/auth/v1.0"
        deadline = time.time() + 90
        while True:
            try:
                req = urllib.request.Request(auth, headers={"X-Auth-User": "test:tester", "X-Auth-Key": "testing"})
                urllib.request.urlopen(req, timeout=2).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("Swift did not serve")
                time.sleep(0.3)
        cred = {"type": "OPENSTACK_SWIFT", "user": "test:tester", "key": "testing", "auth": auth,
                "auth_version": None, "endpoint_type": None}
        rc = {"TYPE": "swift", "USER": "test:tester", "KEY": "testing", "AUTH": auth}
        return cred, rc, {}, 1

    def webdav(self):
        """rclone serve webdav with Nextcloud's checksums: the WebDAV server of the bench."""
        port = free_port()
        d = tempfile.mkdtemp(prefix="dav-", dir=self.work)
        self.spawn([os.path.join(TOOLS, "rclone-1.75.2/rclone"), "serve", "webdav", d, "--addr", f"127.0.0.1:{port}",
                    "--etag-hash", "SHA1", "--user", "bench", "--pass", "benchpw"], port, "rclone serve webdav",
                   env=dict(os.environ, RCLONE_CONFIG="/dev/null"))
        url = f"http://127.0.0.1:{port}/"
        cred = {"type": "WEBDAV", "url": url, "vendor": "NEXTCLOUD", "user": "bench", "pass": "benchpw"}
        obscured = subprocess.run([os.path.join(TOOLS, "rclone-1.75.2/rclone"), "obscure", "benchpw"],
                                  capture_output=True, text=True, check=True).stdout.strip()
        # rclone refuses vendor nextcloud outside /dav/files/USER unless chunking is off.
        rc = {"TYPE": "webdav", "URL": url, "VENDOR": "nextcloud", "USER": "bench", "PASS": obscured,
              "NEXTCLOUD_CHUNK_SIZE": "0"}
        return cred, rc, {}, 1_000_000_000

    def wsgidav(self):
        """WsgiDAV, vendor OTHER: no modification times, no checksums (compared by size)."""
        port = free_port()
        d = tempfile.mkdtemp(prefix="wsgidav-", dir=self.work)
        cfg = os.path.join(self.work, "wsgidav.json")
        json.dump({"host": "127.0.0.1", "port": port, "provider_mapping": {"/": d},
                   "http_authenticator": {"domain_controller": None, "accept_basic": True, "accept_digest": False,
                                          "default_to_digest": False},
                   "simple_dc": {"user_mapping": {"*": {"bench": {"password": "benchpw"}}}},
                   "verbose": 0, "logging": {"enable_loggers": []}}, open(cfg, "w"))
        self.spawn([os.path.join(TOOLS, "wsgidav-4.4.0/bin/wsgidav"), "--config", cfg], port, "WsgiDAV")
        url = f"http://127.0.0.1:{port}/"
        cred = {"type": "WEBDAV", "url": url, "vendor": "OTHER", "user": "bench", "pass": "benchpw"}
        obscured = subprocess.run([os.path.join(TOOLS, "rclone-1.75.2/rclone"), "obscure", "benchpw"],
                                  capture_output=True, text=True, check=True).stdout.strip()
        rc = {"TYPE": "webdav", "URL": url, "VENDOR": "other", "USER": "bench", "PASS": obscured}
        return cred, rc, {}, None


    def _ftp_data(self, name):
        # The FTP account walks to its directory through the work directory.
        os.chmod(self.work, 0o755)
        d = tempfile.mkdtemp(prefix=f"{name}-", dir=self.work)
        os.chmod(d, 0o755)
        data = os.path.join(d, "data")
        os.mkdir(data)
        subprocess.run(["chown", "csync-ftp:", data], check=True)
        return d, data

    def _ftp_creds(self, port, data, extra_rc):
        cred = {"type": "FTP", "host": "127.0.0.1", "port": port, "user": "csync-ftp", "pass": "Ftp-test-1"}
        obscured = subprocess.run([os.path.join(TOOLS, "rclone-1.75.2/rclone"), "obscure", "Ftp-test-1"],
                                  capture_output=True, text=True, check=True).stdout.strip()
        rc = {"TYPE": "ftp", "HOST": "127.0.0.1", "PORT": str(port), "USER": "csync-ftp", "PASS": obscured,
              **extra_rc}
        return cred, rc, {}, 1_000_000_000, data + "/"

    def vsftpd(self):
        """vsftpd 3.0.3 (the unpacked .deb of scripts/setup-deps): LIST, MDTM; rclone with
        writing_mdtm (so that it keeps times too) and force_list_hidden."""
        d, data = self._ftp_data("vsftpd")
        port = free_port()
        empty = os.path.join(d, "empty")
        os.mkdir(empty)
        conf = os.path.join(d, "vsftpd.conf")
        open(conf, "w").write("\n".join([
            "listen=YES", "listen_ipv6=NO", "listen_address=127.0.0.1", f"listen_port={port}", "background=NO",
            "anonymous_enable=NO", "local_enable=YES", "write_enable=YES", "local_umask=022", "use_localtime=NO",
            "mdtm_write=YES", "pasv_enable=YES", "pasv_min_port=21000", "pasv_max_port=21999",
            "pasv_address=127.0.0.1", "connect_from_port_20=NO", "seccomp_sandbox=NO", f"secure_chroot_dir={empty}",
            "pam_service_name=vsftpd", "max_per_ip=0", "max_clients=0", ""]))
        self.spawn([os.path.join(TOOLS, "vsftpd-3.0.3/usr/sbin/vsftpd"), conf], port, "vsftpd",
                   env=dict(os.environ, TZ="UTC"))
        return self._ftp_creds(port, data, {"WRITING_MDTM": "true", "FORCE_LIST_HIDDEN": "true"})

    def pureftpd(self):
        """pure-ftpd 1.0.50: MLSD and MFMT."""
        d, data = self._ftp_data("pureftpd")
        port = free_port()
        self.spawn(["/usr/sbin/pure-ftpd", "-S", f"127.0.0.1,{port}", "-p", "22000:22999", "-P", "127.0.0.1",
                    "-l", "unix", "-E", "-H", "-D", "-u", "1000", "-c", "50", "-C", "50",
                    "-g", os.path.join(d, "pid")], port, "pure-ftpd", env=dict(os.environ, TZ="UTC"))
        return self._ftp_creds(port, data, {})


    def sshd(self):
        """OpenSSH's sshd (Debian 12, 9.2p1), password login of csync-ftp; md5sum runs."""
        d, data = self._ftp_data("sshd")
        port = free_port()
        os.makedirs("/run/sshd", exist_ok=True)
        key = os.path.join(d, "host_ed25519")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
        conf = os.path.join(d, "sshd_config")
        open(conf, "w").write("\n".join([
            f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {key}", f"PidFile {d}/sshd.pid", "UsePAM no",
            "PasswordAuthentication yes", "KbdInteractiveAuthentication no", "AllowUsers csync-ftp", "UseDNS no",
            "MaxStartups 64:30:128", "MaxSessions 32", "Subsystem sftp internal-sftp", ""]))
        self.spawn(["/usr/sbin/sshd", "-D", "-e", "-f", conf], port, "sshd")
        cred = {"type": "SFTP", "host": "127.0.0.1", "port": port, "user": "csync-ftp", "pass": "Ftp-test-1",
                "private_key": None}
        obscured = subprocess.run([os.path.join(TOOLS, "rclone-1.75.2/rclone"), "obscure", "Ftp-test-1"],
                                  capture_output=True, text=True, check=True).stdout.strip()
        rc = {"TYPE": "sftp", "HOST": "127.0.0.1", "PORT": str(port), "USER": "csync-ftp", "PASS": obscured}
        return cred, rc, {}, 1_000_000_000, data + "/"


# (name, cloudsync's spec scheme, title, server)
PROVIDERS = [("azureblob", "azureblob", "Azure Blob (Azurite)", Servers.azure),
             ("b2", "b2", "Backblaze B2 (the B2 fake)", Servers.b2),
             ("gcs", "gcs", "Google Cloud Storage (fake-gcs-server)", Servers.gcs),
             ("swift", "swift", "OpenStack Swift (SAIO)", Servers.swift),
             ("webdav", "webdav", "WebDAV, vendor Nextcloud (rclone serve webdav --etag-hash SHA1)", Servers.webdav),
             ("webdav-other", "webdav", "WebDAV, vendor other (WsgiDAV)", Servers.wsgidav),
             ("ftp-vsftpd", "ftp", "FTP (vsftpd 3.0.3: LIST, MDTM)", Servers.vsftpd),
             ("ftp-pureftpd", "ftp", "FTP (pure-ftpd 1.0.50: MLSD, MFMT)", Servers.pureftpd),
             ("sftp", "sftp", "SFTP (OpenSSH 9.2p1, md5sum)", Servers.sshd)]


def run_measured(measure, argv, env, out, err):
    result = out + ".measure"
    with open(out, "wb") as o, open(err, "wb") as e:
        subprocess.run([measure, result, *argv], stdout=o, stderr=e, env=env, check=False)
    wall, user, sys_, rss, code = open(result).read().split()
    return {"wall": float(wall), "cpu": float(user) + float(sys_), "rss_mib": int(rss) / 1024, "code": int(code)}


def verify(manifest, root, precision):
    problems = []
    for rel, (size, md5, mtime) in manifest.items():
        p = os.path.join(root, rel)
        if not os.path.isfile(p):
            problems.append(f"{rel}: missing")
            continue
        st = os.stat(p)
        if st.st_size != size or bench.md5_file(p) != md5:
            problems.append(f"{rel}: content differs")
        elif precision is not None and abs(st.st_mtime_ns - mtime) >= precision:
            problems.append(f"{rel}: mtime {st.st_mtime_ns} vs {mtime}")
    extra = set(bench.walk_files(root)) - set(manifest) if hasattr(bench, "walk_files") else set()
    problems += [f"{x}: unexpected" for x in sorted(extra)]
    return problems


def rclone_requests(rclone, argv, env):
    out = subprocess.run([rclone, *argv, "--dump", "headers"], env=env, capture_output=True, check=False)
    n = {}
    for line in out.stderr.decode(errors="replace").splitlines():
        if "HTTP REQUEST" in line:
            continue
        parts = line.split()
        # the request line of a dumped request: "... DEBUG : GET /path HTTP/1.1"
        if len(parts) >= 3 and parts[-1].startswith("HTTP/1.") and parts[-3] in (
                "GET", "PUT", "POST", "HEAD", "DELETE", "PATCH", "PROPFIND", "PROPPATCH", "MKCOL", "MOVE", "COPY"):
            n[parts[-3]] = n.get(parts[-3], 0) + 1
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cloudsync", required=True)
    ap.add_argument("--rclone", default=os.path.join(TOOLS, "rclone-1.75.2/rclone"))
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--mib", type=int, default=200)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--only", help="comma-separated providers (azureblob,b2,gcs,swift,webdav,webdav-other,ftp-vsftpd,ftp-pureftpd,sftp)")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="cloudsync-bench-providers-", dir=os.environ.get("TMPDIR", "/var/tmp"))
    measure = os.path.join(work, "measure")
    subprocess.run(["cc", "-O2", "-o", measure, os.path.join(ROOT, "benches/measure.c")], check=True)
    src = os.path.join(work, "src")
    manifest = bench.gen_tree(src, args.files, args.mib << 20, 42)
    servers = Servers(work)
    all_results = {}
    failed = False
    try:
        for name, scheme, title, start in PROVIDERS:
            if args.only and name not in args.only.split(","):
                continue
            started = start(servers)
            cred, rc, extra_env, precision = started[:4]
            # Providers without buckets (FTP) name an absolute folder instead.
            root = started[4] if len(started) > 4 else ""
            cred_file = os.path.join(work, f"{name}.json")
            json.dump(cred, open(cred_file, "w"))
            env = dict(os.environ, RCLONE_CONFIG="/dev/null", **extra_env)
            env.pop("AWS_CA_BUNDLE", None)
            for k, v in rc.items():
                env[f"RCLONE_CONFIG_T_{k.replace(' ', '_')}"] = v
            bucket = f"{root}bench-{name}-{os.getpid()}"
            subprocess.run([args.rclone, "mkdir", f"t:{bucket}"], env=env, check=False, capture_output=True)
            results = {s: {"cloudsync": [], "rclone": []} for s in "abd"}
            counts = {}
            print(f"\n== {title}", flush=True)
            for rep in range(args.reps):
                order = ["cloudsync", "rclone"] if rep % 2 == 0 else ["rclone", "cloudsync"]
                for tool in order:
                    loc = f"{bucket}/{tool}-{rep}"
                    idx = os.path.join(work, f"{name}-{rep}.index")
                    if tool == "cloudsync":
                        push = [args.cloudsync, "copy", src, f"{scheme}:{loc}", "--credential", f"@{cred_file}",
                                "--index", idx, "--json", "-q"]
                        pull_dir = os.path.join(work, f"pull-{name}-cs-{rep}")
                        pull = [args.cloudsync, "copy", f"{scheme}:{loc}", pull_dir, "--credential", f"@{cred_file}",
                                "--no-index", "--json", "-q"]
                    else:
                        push = [args.rclone, "copy", src, f"t:{loc}"]
                        pull_dir = os.path.join(work, f"pull-{name}-rc-{rep}")
                        pull = [args.rclone, "copy", f"t:{loc}", pull_dir]
                    for scen, argv in (("a", push), ("b", push), ("d", pull)):
                        out = os.path.join(work, f"{name}-{tool}-{scen}-{rep}.out")
                        r = run_measured(measure, argv, env, out, out + ".err")
                        if tool == "cloudsync" and r["code"] == 0:
                            try:
                                rep_json = json.loads(open(out).read().strip().splitlines()[-1])
                                reqs = {}
                                for side in rep_json.get("requests", {}).values():
                                    for k, v in side.items():
                                        reqs[k] = reqs.get(k, 0) + v
                                r["requests"] = reqs
                            except (ValueError, IndexError):
                                pass
                        if r["code"] != 0:
                            failed = True
                            print(f"  {tool} {scen} FAILED (exit {r['code']}): {open(out + '.err').read()[-500:]}")
                        results[scen][tool].append(r)
                    problems = verify(manifest, pull_dir, precision)
                    if problems:
                        failed = True
                        print(f"  {tool} pull FAILED verification: {problems[:5]}")
                    shutil.rmtree(pull_dir, ignore_errors=True)
                if rep == 0:
                    counts["b"] = rclone_requests(args.rclone, ["copy", src, f"t:{bucket}/rclone-0"], env)
            all_results[name] = {"title": title, "results": results, "rclone_noop_requests": counts.get("b", {})}
            report(title, results, counts.get("b", {}))
    finally:
        servers.stop()
    if args.json_out:
        json.dump(all_results, open(args.json_out, "w"), indent=2)
    shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


def report(title, results, rclone_noop):
    names = {"a": "push", "b": "no-op re-sync", "d": "pull"}
    print(f"  {'scenario':<15} {'cloudsync wall/CPU/RSS':>26} {'rclone wall/CPU/RSS':>26} {'wall ratio':>10} {'RSS ratio':>9}")
    for s in "abd":
        c, r = results[s]["cloudsync"], results[s]["rclone"]
        if not c or not r:
            continue
        med = lambda runs, k: statistics.median(x[k] for x in runs)
        cw, cc, cr = med(c, "wall"), med(c, "cpu"), med(c, "rss_mib")
        rw, rcpu, rr = med(r, "wall"), med(r, "cpu"), med(r, "rss_mib")
        print(f"  {names[s]:<15} {cw:8.2f}s {cc:6.2f}s {cr:6.1f}M   {rw:8.2f}s {rcpu:6.2f}s {rr:6.1f}M"
              f"   {cw / rw:8.2f}  {cr / rr:8.2f}")
    reqs = results["b"]["cloudsync"][0].get("requests") if results["b"]["cloudsync"] else None
    print(f"  requests in the no-op re-sync: cloudsync {reqs}, rclone {rclone_noop}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
