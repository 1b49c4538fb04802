#!/usr/bin/env python3
"""Resume benchmark: a 1 GiB push and a 1 GiB pull are killed (SIGKILL) once about half
of the bytes went over the wire; the re-run must send (push) or fetch (pull) at most 55%
of the file again. Bytes are counted by a TCP relay between cloudsync and s3s-fs, so what
is measured is what crossed the network, retries and re-sent parts included. Both results
are verified byte for byte (the pull's copy against the source).

    scripts/bench-resume [--size-mib 1024] [--kill-at 0.5]
"""
import argparse, hashlib, os, shutil, signal, socket, subprocess, sys, tempfile, threading, time

ACCESS, SECRET = "bench-access", "bench-secret-key"


class Relay:
    """Loopback TCP relay that counts bytes in each direction."""

    def __init__(self, upstream_port):
        self.up = upstream_port
        self.to_server = 0
        self.to_client = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            c, _ = self.sock.accept()
            s = socket.create_connection(("127.0.0.1", self.up))
            for a, b, up in ((c, s, True), (s, c, False)):
                threading.Thread(target=self.pipe, args=(a, b, up), daemon=True).start()

    def pipe(self, a, b, up):
        try:
            while True:
                d = a.recv(1 << 20)
                if not d:
                    break
                with self.lock:
                    if up:
                        self.to_server += len(d)
                    else:
                        self.to_client += len(d)
                b.sendall(d)
        except OSError:
            pass
        finally:
            for x in (a, b):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def counts(self):
        with self.lock:
            return self.to_server, self.to_client


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def md5_file(p):
    h = hashlib.md5()
    with open(p, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cloudsync", required=True)
    ap.add_argument("--s3s-fs", dest="s3s_fs", default="s3s-fs")
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--kill-at", type=float, default=0.5)
    args = ap.parse_args()
    size = args.size_mib << 20
    work = tempfile.mkdtemp(prefix="cloudsync-resume-")
    data = os.path.join(work, "s3")
    os.makedirs(data)
    port = free_port()
    server = subprocess.Popen([args.s3s_fs, "--host", "127.0.0.1", "--port", str(port), "--access-key", ACCESS,
                               "--secret-key", SECRET, data], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.05)
        relay = Relay(port)
        env = dict(os.environ, CLOUDSYNC_S3_ENDPOINT=f"http://127.0.0.1:{relay.port}",
                   CLOUDSYNC_S3_ACCESS_KEY_ID=ACCESS, CLOUDSYNC_S3_SECRET_ACCESS_KEY=SECRET)
        index = os.path.join(work, "index.db")
        src = os.path.join(work, "src")
        os.makedirs(src)
        big = os.path.join(src, "disk.img")
        with open(big, "wb") as f:
            for _ in range(size >> 20):
                f.write(os.urandom(1 << 20))
        want = md5_file(big)

        def run(argv, kill_after_bytes=None, direction=0):
            before = relay.counts()[direction]
            p = subprocess.Popen([args.cloudsync, *argv, "--index", index, "-q"], env=env)
            killed = False
            while p.poll() is None:
                if kill_after_bytes is not None and relay.counts()[direction] - before >= kill_after_bytes:
                    p.send_signal(signal.SIGKILL)
                    killed = True
                    break
                time.sleep(0.01)
            p.wait()
            moved = relay.counts()[direction] - before
            if not killed and p.returncode != 0:
                raise SystemExit(f"cloudsync {' '.join(argv)} failed with {p.returncode}")
            return moved, killed

        results = []
        # Push: killed at about half, then re-run.
        first, killed = run(["copy", src, "s3:resume/data"], int(size * args.kill_at), 0)
        again, _ = run(["copy", src, "s3:resume/data"], None, 0)
        results.append(("push", first, killed, again))
        # Pull into an empty directory: killed at about half, then re-run.
        dst = os.path.join(work, "dst")
        first, killed = run(["copy", "s3:resume/data", dst], int(size * args.kill_at), 1)
        again, _ = run(["copy", "s3:resume/data", dst], None, 1)
        results.append(("pull", first, killed, again))
        got = md5_file(os.path.join(dst, "disk.img"))
        leftovers = [n for n in os.listdir(dst) if n.endswith(".cloudsync-partial")]
        uploads = [n for n in os.listdir(data) if n.startswith(".upload_id-")]
        print(f"resume benchmark: one {args.size_mib} MiB file, killed after {args.kill_at:.0%} of its bytes moved")
        print(f"{'':6} {'before kill':>14} {'re-run':>14} {'re-run / size':>14}  target <= 55%")
        ok = True
        for name, first, killed, again in results:
            ratio = again / size
            met = killed and ratio <= 0.55
            ok &= met
            note = "" if killed else "  (finished before the kill: no measurement)"
            print(f"{name:6} {first / 2**20:11.1f} MiB {again / 2**20:11.1f} MiB {ratio:13.1%}  {'met' if met else 'MISSED'}{note}")
        print(f"verified: pull copy md5 {'matches' if got == want else 'DIFFERS'}; "
              f"temporary files left: {len(leftovers)}; unfinished uploads left: {len(uploads)}")
        return 0 if ok and got == want and not leftovers and not uploads else 1
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
