#!/usr/bin/env python3
"""An OpenStack Swift all-in-one for tests ("SAIO-lite"): the real Swift servers from
PyPI's `swift` package (proxy with tempauth, account, container, object; one replica,
one device) and memcached, all on loopback, configured under one directory.

Usage: swift_saio.py DIR PROXY_PORT          (run with the Python of Swift's venv)
Auth v1: GET http://127.0.0.1:PROXY_PORT/auth/v1.0 with X-Auth-User test:tester and
X-Auth-Key testing. The process stays in the foreground; its servers die with it.
"""

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1


def die_with_parent():
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def serve(conf_dir, server):
    # swift.conf's place is fixed in Swift; point it here before anything reads it.
    import swift.common.utils as utils
    utils.SWIFT_CONF_FILE = os.path.join(conf_dir, "swift.conf")
    from swift.common.wsgi import run_wsgi
    sys.exit(run_wsgi(os.path.join(conf_dir, server + ".conf"), server, verbose=False))


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def main():
    if sys.argv[1] == "--serve":
        return serve(sys.argv[2], sys.argv[3])
    d, proxy_port = os.path.abspath(sys.argv[1]), int(sys.argv[2])
    os.makedirs(os.path.join(d, "srv", "d1"), exist_ok=True)
    ports = {"account": free_port(), "container": free_port(), "object": free_port()}
    mport = free_port()
    bindir = os.path.dirname(sys.executable)
    write(os.path.join(d, "swift.conf"),
          "[swift-hash]\nswift_hash_path_suffix = cloudsync\nswift_hash_path_prefix = test\n\n"
          "[storage-policy:0]\nname = Policy-0\ndefault = yes\n")
    common = ("[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = %d\nworkers = 0\nswift_dir = " + d +
              "\ndevices = " + os.path.join(d, "srv") + "\nmount_check = false\nlog_level = WARNING\n"
              "log_address = /nonexistent\n\n")
    for kind in ("account", "container", "object"):
        write(os.path.join(d, kind + "-server.conf"), common % ports[kind] +
              "[pipeline:main]\npipeline = %s-server\n\n[app:%s-server]\nuse = egg:swift#%s\n\n"
              "[%s-replicator]\n[%s-auditor]\n" % (kind, kind, kind, kind, kind) +
              ("[container-updater]\n[container-sync]\n" if kind == "container" else "") +
              ("[object-updater]\n" if kind == "object" else ""))
        builder = os.path.join(d, kind + ".builder")
        if not os.path.exists(os.path.join(d, kind + ".ring.gz")):
            rb = os.path.join(bindir, "swift-ring-builder")
            subprocess.run([sys.executable, rb, builder, "create", "8", "1", "1"], check=True, stdout=subprocess.DEVNULL)
            subprocess.run([sys.executable, rb, builder, "add", "r1z1-127.0.0.1:%d/d1" % ports[kind], "1"],
                           check=True, stdout=subprocess.DEVNULL)
            subprocess.run([sys.executable, rb, builder, "rebalance"], check=False, stdout=subprocess.DEVNULL)
    mw = ["catch_errors", "gatekeeper", "healthcheck", "proxy-logging", "cache", "listing_formats", "bulk",
          "tempauth", "copy", "slo", "dlo", "versioned_writes"]
    proxy = (common.replace("devices =", "#devices =") % proxy_port +
             "[pipeline:main]\npipeline = %s proxy-logging proxy-server\n\n" % " ".join(mw) +
             "[app:proxy-server]\nuse = egg:swift#proxy\naccount_autocreate = true\nallow_account_management = true\n\n" +
             "[filter:tempauth]\nuse = egg:swift#tempauth\nuser_admin_admin = admin .admin .reseller_admin\n"
             "user_test_tester = testing .admin\ntoken_life = 86400\n\n" +
             "[filter:cache]\nuse = egg:swift#memcache\nmemcache_servers = 127.0.0.1:%d\n\n" % mport +
             "".join("[filter:%s]\nuse = egg:swift#%s\n\n" % (m, m.replace("-", "_")) for m in mw
                     if m not in ("tempauth", "cache")))
    write(os.path.join(d, "proxy-server.conf"), proxy)
    children = [subprocess.Popen(["memcached", "-l", "127.0.0.1", "-p", str(mport), "-U", "0", "-u", "root", "-m", "64"],
                                 preexec_fn=die_with_parent)]
    for server in ("account-server", "container-server", "object-server", "proxy-server"):
        children.append(subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve", d, server],
                                         preexec_fn=die_with_parent, stdout=subprocess.DEVNULL))

    def stop(*_):
        for c in children:
            c.kill()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    while True:
        for c in children:
            if c.poll() is not None:
                print("swift_saio: a server exited (%s)" % c.args, file=sys.stderr)
                stop()
        time.sleep(0.5)


if __name__ == "__main__":
    main()
