#!/usr/bin/env python3
"""cloudsync against rclone on one s3s-fs server on loopback, on the same data.

Run through scripts/bench (it installs the dependencies and builds cloudsync first).

Scenarios (each repetition alternates which tool runs first; medians are reported):
  a  push 2,000 files / 200 MiB into an empty bucket
  b  no-op re-sync of the same (cloudsync reuses the index file of its run of a)
  d  pull the 2,000 files that rclone pushed in a into an empty local directory
  c  push one 1 GiB file into an empty bucket

Each tool run is a child of a small launcher (benches/measure.c) that measures it with
wait4(): wall time, user+sys CPU, peak RSS (ru_maxrss). Requests are counted at the server, from s3s-fs's debug log (one "resolved
route, op: X" line per request), so both tools are counted the same way. The CPU that
s3s-fs spent during each run is read from /proc and shown too.

Every push and pull is checked against the source: names, sizes, MD5 of the contents and
the modification time (the X-Amz-Meta-Mtime rclone metadata for objects, st_mtime for
pulled files). A mismatch is printed as a FAILED check; it would be a bug.

This script reports. It never fails because a target is missed (exit 0); it exits 1 only
when a tool failed or a result did not verify.
"""

import argparse
import base64
import datetime
import hashlib
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

MiB = 1 << 20
AK = "benchak"
SK = "bench-secret-key-0123456789"
ROUTE_RE = re.compile(rb"(\S+Z) DEBUG s3s::ops: resolved route, op: ([A-Za-z0-9]+)")

TARGETS = {
    # scenario: (max wall ratio cloudsync/rclone, max peak RSS ratio)
    "a": (0.7, 0.25),
    "b": (1.0, 0.25),
    "c": (0.4, 0.25),
    "d": (0.7, 0.25),
}
CRYPT_PW = "bench crypt password"
CRYPT_SALT = "bench crypt salt"
# (e): cloudsync's crypt push keeps at least this fraction of its plain push throughput
CRYPT_MIN_FRACTION = 0.9
TITLES = {
    "a": "(a) push {files} files / {total} MiB into an empty bucket",
    "b": "(b) no-op re-sync of the same {files} files",
    "c": "(c) push one {big} MiB file",
    "d": "(d) pull the {files} files into an empty directory",
    "e": "(e) crypt push of the {files} files (standard name encryption) into an empty bucket",
}


def log(msg=""):
    print(msg, flush=True)


# ---------------------------------------------------------------------------------------
# data


def gen_tree(root, n_files, total_bytes, seed):
    """A deterministic NAS-like tree: ~90 directories, log-normal file sizes (median about
    30 KiB, a few MiB-sized files), summing to exactly total_bytes; random (incompressible)
    contents; modification times with nanoseconds. Returns {relpath: (size, md5, mtime_ns)}."""
    rng = random.Random(seed)
    tops = {
        "photos": "jpg", "documents": "pdf", "projects": "c", "music": "flac",
        "backups": "tar", "mail": "eml", "scans": "png", "home": "txt",
    }
    dirs = []
    for top in tops:
        dirs.append(top)
        for y in range(rng.randint(2, 5)):
            year = f"{top}/{2019 + y}"
            dirs.append(year)
            for m in range(rng.randint(0, 4)):
                dirs.append(f"{year}/{m + 1:02d}")
    # mean file size total/n; sigma 1.6 puts the median at about mean/3.6
    mean = total_bytes / n_files
    mu = math.log(mean) - 1.6 * 1.6 / 2
    raw = [min(rng.lognormvariate(mu, 1.6), 32 * MiB) for _ in range(n_files)]
    scale = total_bytes / sum(raw)
    sizes = [int(x * scale) for x in raw]
    sizes[rng.randrange(n_files)] += total_bytes - sum(sizes)
    content = random.Random(seed + 1)
    manifest = {}
    for i, size in enumerate(sizes):
        d = rng.choice(dirs)
        ext = tops[d.split("/")[0]]
        rel = f"{d}/{d.split('/')[0][:4]}_{i:05d}.{ext}"
        mtime_ns = (1_600_000_000 + rng.randrange(100_000_000)) * 10**9 + rng.randrange(10**9)
        manifest[rel] = (size, write_random(os.path.join(root, rel), size, content), mtime_ns)
        os.utime(os.path.join(root, rel), ns=(mtime_ns, mtime_ns))
    return manifest


def write_random(path, size, rng):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    h = hashlib.md5()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = rng.randbytes(min(left, 8 * MiB))
            h.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return h.hexdigest()


def gen_big(root, size, seed):
    rel = "vm/disk-image.raw"
    md5 = write_random(os.path.join(root, rel), size, random.Random(seed + 2))
    mtime_ns = 1_700_000_000_123_456_789
    os.utime(os.path.join(root, rel), ns=(mtime_ns, mtime_ns))
    return {rel: (size, md5, mtime_ns)}


def md5_file(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MiB):
            h.update(chunk)
    return h.hexdigest()


def warm(root):
    """Read every file once so that both tools find the same (warm) page cache."""
    n = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as f:
                while f.read(8 * MiB):
                    pass
            n += 1
    return n


def walk_files(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            out[os.path.relpath(p, root)] = p
    return out


def b64name(s):
    return base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")


def parse_mtime_ns(text):
    """rclone's X-Amz-Meta-Mtime: seconds since the epoch with up to 9 decimals."""
    sec, _, frac = text.partition(".")
    return int(sec) * 10**9 + int((frac + "000000000")[:9])


def verify(found, manifest, mtime_of):
    """found: {rel: path}. Returns a list of problems (empty when identical)."""
    problems = []
    missing = sorted(set(manifest) - set(found))
    extra = sorted(set(found) - set(manifest))
    if missing:
        problems.append(f"{len(missing)} missing, e.g. {missing[0]}")
    if extra:
        problems.append(f"{len(extra)} unexpected, e.g. {extra[0]}")
    bad_size = bad_md5 = bad_mtime = 0
    example = {}
    for rel, (size, md5, mtime_ns) in manifest.items():
        p = found.get(rel)
        if p is None:
            continue
        if os.path.getsize(p) != size:
            bad_size += 1
            example.setdefault("size", rel)
            continue
        if md5_file(p) != md5:
            bad_md5 += 1
            example.setdefault("content", rel)
        got = mtime_of(rel, p)
        if got != mtime_ns:
            bad_mtime += 1
            example.setdefault("mtime", f"{rel} ({got} != {mtime_ns})")
    for what, n in (("size", bad_size), ("content", bad_md5), ("mtime", bad_mtime)):
        if n:
            problems.append(f"{n} with a different {what}, e.g. {example[what]}")
    return problems


# ---------------------------------------------------------------------------------------
# the server


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    def __init__(self, exe, root, log_path, count_requests, preload=None):
        self.root = root
        self.log_path = log_path
        self.port = free_port()
        env = dict(os.environ)
        env.pop("RUST_LOG", None)
        if count_requests:
            env["RUST_LOG"] = "s3s::ops=debug"
        if preload:
            env["LD_PRELOAD"] = preload
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [exe, "--host", "127.0.0.1", "--port", str(self.port),
             "--access-key", AK, "--secret-key", SK, root],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise SystemExit(f"s3s-fs did not start; see {log_path}")
                time.sleep(0.05)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_hwm_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def log_offset(self):
        self.log.flush()
        return os.path.getsize(self.log_path)

    def requests_since(self, offset):
        """Requests per op since offset, and the time (epoch s) of the last
        CompleteMultipartUpload request, if any."""
        counts = {}
        complete_at = None
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            for m in ROUTE_RE.finditer(f.read()):
                op = m.group(2).decode()
                counts[op] = counts.get(op, 0) + 1
                if op == "CompleteMultipartUpload":
                    complete_at = datetime.datetime.fromisoformat(
                        m.group(1).decode().replace("Z", "+00:00")).timestamp()
        return counts, complete_at

    def drop_bucket(self, bucket):
        shutil.rmtree(os.path.join(self.root, bucket), ignore_errors=True)
        prefix = f".bucket-{b64name(bucket)}."
        for name in os.listdir(self.root):
            if name.startswith(prefix):
                os.unlink(os.path.join(self.root, name))

    def object_mtime_ns(self, bucket, key):
        meta = os.path.join(self.root, f".bucket-{b64name(bucket)}.object-{b64name(key)}.metadata.json")
        try:
            with open(meta) as f:
                return parse_mtime_ns(json.load(f)["user_metadata"]["mtime"])
        except (OSError, KeyError, ValueError):
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ---------------------------------------------------------------------------------------
# measuring one tool run


class Bench:
    def __init__(self, args, work, server):
        self.args = args
        self.work = work
        self.server = server
        self.seq = 0
        self.cs_env = dict(os.environ)
        self.cs_env.update({
            "CLOUDSYNC_S3_ENDPOINT": server.endpoint,
            "CLOUDSYNC_S3_ACCESS_KEY_ID": AK,
            "CLOUDSYNC_S3_SECRET_ACCESS_KEY": SK,
        })
        self.cs_env.pop("CLOUDSYNC_INDEX", None)
        conf = os.path.join(work, "rclone.conf")
        open(conf, "w").close()
        self.rc_env = dict(os.environ)
        self.rc_env.pop("AWS_CA_BUNDLE", None)
        self.rc_env.update({
            "RCLONE_CONFIG": conf,
            "RCLONE_CONFIG_BENCH_TYPE": "s3",
            "RCLONE_CONFIG_BENCH_PROVIDER": "Other",
            "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": AK,
            "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": SK,
            "RCLONE_CONFIG_BENCH_ENDPOINT": server.endpoint,
            "RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE": "true",
        })
        obscure = lambda v: subprocess.run([args.rclone, "obscure", v], check=True, capture_output=True,
                                           text=True).stdout.strip()
        self.rc_env.update({
            "RCLONE_CONFIG_BCRYPT_TYPE": "crypt",
            "RCLONE_CONFIG_BCRYPT_PASSWORD": obscure(CRYPT_PW),
            "RCLONE_CONFIG_BCRYPT_PASSWORD2": obscure(CRYPT_SALT),
            "RCLONE_CONFIG_BCRYPT_FILENAME_ENCRYPTION": "standard",
        })
        self.failed = False
        self.noisy_runs = 0
        self.wait_budget = args.wait_idle

    def rclone_plain(self, *argv):
        """An rclone command that is set-up, not measured (rclone mkdir)."""
        subprocess.run([self.args.rclone, *argv], env=self.rc_env, check=True,
                       stdout=subprocess.DEVNULL)

    def run_measured(self, argv, env, out_path, err_path):
        """Runs argv under the measure launcher (see benches/measure.c): wall s, user s,
        sys s, peak RSS KiB, exit code."""
        result = os.path.join(self.work, "measure.result")
        if os.path.exists(result):
            os.unlink(result)
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen([self.args.measure_exe, result, *argv], stdout=out, stderr=err,
                                    env=env, start_new_session=True)
            timer = threading.Timer(self.args.timeout, os.killpg, (proc.pid, signal.SIGKILL))
            timer.start()
            proc.wait()
            timer.cancel()
        try:
            with open(result) as f:
                w, u, s, rss, code = f.read().split()
            return float(w), float(u), float(s), int(rss), int(code)
        except (OSError, ValueError):
            return 0.0, 0.0, 0.0, 0, -1

    def wait_idle(self):
        """Waits until the machine is idle (half a second in which all processes together
        used less than a tenth of a core), from a budget of --wait-idle seconds per
        benchmark; once that is spent, runs start at once (and may come out NOISY)."""
        t0 = time.time()
        waited = False
        while True:
            b0 = machine_busy_seconds()
            time.sleep(0.5)
            if machine_busy_seconds() - b0 < 0.05:
                break
            if time.time() - t0 > self.wait_budget:
                log("  (the machine stays busy and the waiting budget is spent; measuring anyway)")
                break
            if not waited:
                log("  (waiting for the machine to become idle...)")
                waited = True
        self.wait_budget = max(0.0, self.wait_budget - (time.time() - t0 - 0.5))

    def measure(self, tool, argv):
        env = self.cs_env if tool.startswith("cloudsync") else self.rc_env
        self.seq += 1
        out_path = os.path.join(self.work, "logs", f"{self.seq:03d}-{tool.split()[0]}.out")
        err_path = out_path[:-4] + ".err"
        os.sync()  # flush the previous run's writes so that they are not charged to this one
        self.wait_idle()
        offset = self.server.log_offset()
        srv_cpu0 = self.server.cpu_seconds()
        busy0 = machine_busy_seconds()
        wall, user, sys_, maxrss_kib, code = self.run_measured(argv, env, out_path, err_path)
        ended = time.time()
        busy = machine_busy_seconds() - busy0
        srv_cpu = self.server.cpu_seconds() - srv_cpu0
        requests, complete_at = (self.server.requests_since(offset) if self.args.count_requests
                                 else ({}, None))
        # whatever else ran on the machine meanwhile (another build, say): noise
        other_cpu = max(0.0, busy - user - sys_ - srv_cpu)
        r = {
            "tool": tool,
            "argv": argv,
            "exit": code,
            "wall": wall,
            "cpu": user + sys_,
            "user": user,
            "sys": sys_,
            "rss_mib": maxrss_kib / 1024,
            "server_cpu": srv_cpu,
            "other_cpu": other_cpu,
            "requests": requests,
        }
        if complete_at is not None:
            # the server concatenates and re-hashes the parts while the client waits
            r["complete_wait"] = max(0.0, ended - complete_at)
        if tool.startswith("cloudsync"):
            try:
                with open(out_path) as f:
                    summary = json.load(f)
                r["client_requests"] = summary.get("requests", {})
                r["files_transferred"] = summary.get("files_transferred")
            except (OSError, ValueError):
                pass
        if code != 0:
            self.failed = True
            with open(err_path, errors="replace") as f:
                tail = f.read()[-2000:]
            log(f"  !! {tool} exited with {code}: {' '.join(argv)}\n{tail}")
        noisy = other_cpu > max(0.2, 0.1 * wall)
        if noisy:
            self.noisy_runs += 1
        log(f"  {tool:<12} wall {wall:7.2f} s  cpu {r['cpu']:6.2f} s  rss {r['rss_mib']:7.1f} MiB"
            f"  s3s-fs cpu {srv_cpu:6.2f} s  other cpu {other_cpu:5.2f} s{' (NOISY)' if noisy else ''}"
            + (f"  waiting for CompleteMultipartUpload {r['complete_wait']:.2f} s" if "complete_wait" in r else "")
            + f"\n  {'':<12} {fmt_requests(requests)}")
        return r


def machine_busy_seconds():
    """CPU seconds all processes on the machine have used since boot (from /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def fmt_requests(counts):
    if not counts:
        return "-"
    return " ".join(f"{op} {n}" for op, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def check(label, problems, bench):
    if problems:
        bench.failed = True
        log(f"  FAILED check, {label}: " + "; ".join(problems))
    else:
        log(f"  verified: {label}")


# ---------------------------------------------------------------------------------------
# the run


def machine_facts(args):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass

    def version(argv):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
            return out.splitlines()[0].strip() if out else "?"
        except (OSError, subprocess.TimeoutExpired):
            return "?"

    git = version(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "describe",
                   "--always", "--dirty"])
    mem = "?"
    with open("/proc/meminfo") as f:
        mem = f"{int(f.readline().split()[1]) / 1024 / 1024:.1f} GiB"
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "cloudsync": f"{version([args.cloudsync, '--version'])} (git {git})",
        "rclone": version([args.rclone, "version"]),
        "s3s-fs": version([args.s3s_fs, "--version"]),
        "python": platform.python_version(),
    }


def pick_workdir(base):
    candidates = [base] if base else [os.environ.get("TMPDIR") or "/var/tmp", "/var/tmp", "/tmp",
                                      os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target")]
    for c in candidates:
        if not c or not os.path.isdir(c):
            continue
        fstype = subprocess.run(["stat", "-f", "-c", "%T", c], capture_output=True, text=True).stdout.strip()
        if fstype in ("tmpfs", "ramfs") and not base:
            continue
        st = os.statvfs(c)
        return tempfile.mkdtemp(prefix="cloudsync-bench.", dir=c), fstype, st.f_bavail * st.f_frsize
    raise SystemExit("no directory on a disk for the benchmark data; pass --workdir")


def fs_note(path):
    """ext4 without a journal avoids reusing inodes deleted in the last 1-5 minutes, by
    scanning past them: creating files gets several times slower after a large deletion
    (seen here as 2-3x the server CPU in (a)). Worth a warning."""
    try:
        dev = os.stat(path).st_dev
        with open("/proc/self/mountinfo") as f:
            for line in f:
                parts = line.split()
                major, minor = (int(x) for x in parts[2].split(":"))
                if os.makedev(major, minor) == dev:
                    fstype, source = parts[parts.index("-") + 1], parts[parts.index("-") + 2]
                    if fstype == "ext4":
                        name = os.path.basename(source)
                        task = f"/sys/fs/ext4/{name}/journal_task"
                        if os.path.exists(task) and open(task).read().strip() == "<none>":
                            return ("ext4 without a journal: creating files is slow for a few minutes after "
                                    "thousands were deleted (a previous benchmark's cleanup, cargo clean); "
                                    "let the machine rest 5 minutes before a run you mean to record")
                    return None
    except (OSError, ValueError):
        return None
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cloudsync", required=True, help="the cloudsync binary")
    ap.add_argument("--rclone", default="rclone")
    ap.add_argument("--s3s-fs", dest="s3s_fs", default="s3s-fs")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of each scenario (default 3)")
    ap.add_argument("--scenarios", default="abdce", help="which of a b c d e to run (b, d and e need a)")
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--total-mib", type=int, default=200)
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--workdir", help="parent directory of the data and the server root "
                    "(default: $TMPDIR or /var/tmp, never a tmpfs)")
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    ap.add_argument("--no-request-log", dest="count_requests", action="store_false",
                    help="run s3s-fs without its debug log: no request counts, to see what the logging costs")
    ap.add_argument("--extra-c", metavar="FLAGS", default="--s3-upload-cutoff 2048",
                    help="also run cloudsync with these flags in (c), reported as an extra line, not "
                    "the headline (default: '%(default)s', one PUT instead of a multipart upload; '' for none)")
    ap.add_argument("--extra-c-rclone", metavar="FLAGS", default="--s3-upload-cutoff 2G",
                    help="the same for rclone, for a like-for-like extra comparison (default: '%(default)s')")
    ap.add_argument("--server-nodelay", action="store_true",
                    help="run s3s-fs with TCP_NODELAY on its connections (an LD_PRELOAD shim, "
                    "benches/nodelay.c): without it every GET on a kept-alive connection can stall "
                    "~40 ms on Nagle + a delayed ACK, which dominates rclone's (d); cloudsync acknowledges at once "
                    "(TCP_QUICKACK), so this shows what the stall costs rclone")
    ap.add_argument("--wait-idle", type=float, default=180, metavar="S",
                    help="before each run, wait for other processes to leave the CPU, S seconds at most "
                    "in all (default %(default)s); runs that still shared it are flagged NOISY")
    ap.add_argument("--timeout", type=float, default=900, help="kill a tool run after this many seconds")
    ap.add_argument("--json-out", help="write every measurement here as JSON")
    ap.add_argument("--markdown", help="write the result tables here as Markdown")
    args = ap.parse_args()
    scen = [s for s in "abdec" if s in args.scenarios]
    if ("b" in scen or "d" in scen or "e" in scen) and "a" not in scen:
        raise SystemExit("scenarios b, d and e need a")

    facts = machine_facts(args)
    work, fstype, free = pick_workdir(args.workdir)
    need = (args.total_mib * (1 + 4 * args.reps) + args.big_mib * 4) * MiB
    log("cloudsync benchmark against rclone, one s3s-fs on loopback")
    shown = [a for i, a in enumerate(sys.argv[1:]) if a != "--cloudsync" and (i == 0 or sys.argv[i] != "--cloudsync")]
    log(f"  command    scripts/bench {' '.join(shown)}".rstrip())
    for k, v in facts.items():
        log(f"  {k:<10} {v}")
    log(f"  data in    {work} ({fstype}, {free / 2**30:.1f} GiB free)")
    log(f"  load avg   {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)")
    note = fs_note(work)
    if note:
        log(f"  note: {note}")
    if free < need:
        raise SystemExit(f"need about {need / 2**30:.1f} GiB free in {work}")
    b0 = machine_busy_seconds()
    time.sleep(1)
    busy_now = machine_busy_seconds() - b0
    log(f"  CPU in use now: {busy_now:.2f} of {os.cpu_count()} cores")
    if busy_now > 0.2:
        log("  note: the machine is not idle; timings will be noisy")

    server = None
    stop = {"sig": None}

    def on_signal(sig, _frame):
        stop["sig"] = sig
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    results = {s: [] for s in scen}
    extra_c = args.extra_c.split()
    extra_c_rclone = args.extra_c_rclone.split()
    t_start = time.time()
    try:
        os.makedirs(os.path.join(work, "logs"))
        src = os.path.join(work, "src")
        bigsrc = os.path.join(work, "bigsrc")
        s3root = os.path.join(work, "s3")
        os.makedirs(s3root)
        t = time.time()
        manifest = gen_tree(src, args.files, args.total_mib * MiB, args.seed) if "a" in scen else {}
        big = gen_big(bigsrc, args.big_mib * MiB, args.seed) if "c" in scen else {}
        if manifest:
            sizes = sorted(v[0] for v in manifest.values())
            log(f"  data       {len(sizes)} files, {sum(sizes) / MiB:.0f} MiB in "
                f"{len({os.path.dirname(r) for r in manifest})} directories; sizes: median "
                f"{sizes[len(sizes) // 2] / 1024:.0f} KiB, 90th percentile {sizes[len(sizes) * 9 // 10] / 1024:.0f} KiB, "
                f"max {sizes[-1] / MiB:.1f} MiB, {sum(1 for s in sizes if s >= MiB)} files of 1 MiB or more")
        if big:
            log(f"  data       one file of {args.big_mib} MiB")
        log(f"  generated in {time.time() - t:.1f} s (seed {args.seed})")

        args.measure_exe = os.path.join(work, "measure")
        subprocess.run(["cc", "-O2", "-o", args.measure_exe,
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "measure.c")], check=True)

        preload = None
        if args.server_nodelay:
            preload = os.path.join(work, "nodelay.so")
            subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", preload,
                            os.path.join(os.path.dirname(os.path.abspath(__file__)), "nodelay.c"), "-ldl"],
                           check=True)
        server = S3Server(args.s3s_fs, s3root, os.path.join(work, "s3s-fs.log"), args.count_requests, preload)
        bench = Bench(args, work, server)
        log(f"  s3s-fs     {server.endpoint}, request log {'on (RUST_LOG=s3s::ops=debug)' if args.count_requests else 'OFF: no request counts'}"
            f"{', TCP_NODELAY forced on (--server-nodelay)' if preload else ''}")
        floor = bench.run_measured(["true"], os.environ, os.devnull, os.devnull)[3] / 1024
        log(f"  peak RSS of /bin/true as measured here: {floor:.1f} MiB (the floor of the RSS column)")
        cs = args.cloudsync

        for rep in range(args.reps):
            order = ["cloudsync", "rclone"] if rep % 2 == 0 else ["rclone", "cloudsync"]
            log(f"\n== repetition {rep + 1} of {args.reps} ({order[0]} first)")
            index = os.path.join(work, f"index-a{rep}.db")
            dst = {"cloudsync": f"cs-a{rep}", "rclone": f"rc-a{rep}"}
            for bucket in dst.values():
                bench.rclone_plain("mkdir", f"bench:{bucket}")

            def push_argv(tool, source, bucket, idx, extra=()):
                if tool == "cloudsync":
                    return [cs, "sync", source, f"s3:{bucket}", "--index", idx, "--json", *extra]
                return [args.rclone, "sync", source, f"bench:{bucket}", *extra]

            if "a" in scen:
                log("(a) push")
                warm(src)
                for tool in order:
                    results["a"].append(bench.measure(tool, push_argv(tool, src, dst[tool], index)))
                for tool in order:
                    b = dst[tool]
                    check(f"bucket {b} = source", verify(
                        walk_files(os.path.join(s3root, b)), manifest,
                        lambda rel, _p, b=b: server.object_mtime_ns(b, rel)), bench)
            if "b" in scen:
                log("(b) no-op re-sync")
                warm(src)
                for tool in order:
                    r = bench.measure(tool, push_argv(tool, src, dst[tool], index))
                    results["b"].append(r)
                    if tool == "cloudsync" and r.get("files_transferred"):
                        log(f"  FAILED check: the no-op re-sync transferred {r['files_transferred']} files")
                        bench.failed = True
            if "d" in scen:
                log(f"(d) pull s3:{dst['rclone']} (pushed by rclone)")
                warm(os.path.join(s3root, dst["rclone"]))
                pulled = {}
                for tool in order:
                    pulled[tool] = os.path.join(work, f"pull-{tool}-{rep}")
                    os.makedirs(pulled[tool])
                    if tool == "cloudsync":
                        argv = [cs, "sync", f"s3:{dst['rclone']}", pulled[tool], "--index",
                                os.path.join(work, f"index-d{rep}.db"), "--json"]
                    else:
                        argv = [args.rclone, "sync", f"bench:{dst['rclone']}", pulled[tool]]
                    results["d"].append(bench.measure(tool, argv))
                for tool in order:
                    check(f"{tool}'s pulled tree = source", verify(
                        walk_files(pulled[tool]), manifest, lambda _rel, p: os.stat(p).st_mtime_ns), bench)
            if "e" in scen:
                log("(e) crypt push")
                warm(src)
                for tool in order:
                    bucket = f"{'ce' if tool == 'cloudsync' else 'rce'}{rep}"
                    bench.rclone_plain("mkdir", f"bench:{bucket}")
                    if tool == "cloudsync":
                        argv = [cs, "sync", src, f"s3:{bucket}", "--index", os.path.join(work, f"index-e{rep}.db"),
                                "--json", "--encrypt-password", CRYPT_PW, "--encrypt-salt", CRYPT_SALT,
                                "--filename-encryption", "standard"]
                    else:
                        bench.rc_env["RCLONE_CONFIG_BCRYPT_REMOTE"] = f"bench:{bucket}"
                        argv = [args.rclone, "sync", src, "bcrypt:"]
                    results["e"].append(bench.measure(f"{tool} crypt", argv))
                # what cloudsync encrypted, stock rclone reads: names, sizes and contents
                bench.rc_env["RCLONE_CONFIG_BCRYPT_REMOTE"] = f"bench:ce{rep}"
                r = subprocess.run([args.rclone, "cryptcheck", src, "bcrypt:"], env=bench.rc_env,
                                   capture_output=True, text=True)
                check(f"rclone cryptcheck of cloudsync's bucket ce{rep}",
                      [] if r.returncode == 0 else [r.stderr[-800:]], bench)
            # The 2,000-file buckets and pulled trees stay until the end: deleting thousands of
            # files slows down creating files for minutes afterwards on some filesystems (ext4
            # without a journal skips recently deleted inodes), which would slow the next runs.
            if "c" in scen:
                log("(c) push one big file")
                warm(bigsrc)
                tools = [(t, t, ()) for t in order]
                extras = {"cloudsync": extra_c, "rclone": extra_c_rclone}
                for t in order:
                    if extras[t]:
                        tools.append((f"{t} {' '.join(extras[t])}", t, extras[t]))
                for i, (tool, base, extra) in enumerate(tools):
                    bucket = f"c{rep}-{i}"
                    bench.rclone_plain("mkdir", f"bench:{bucket}")
                    idx = os.path.join(work, f"index-c{rep}-{i}.db")
                    results["c"].append(bench.measure(tool, push_argv(base, bigsrc, bucket, idx, extra)))
                    check(f"bucket {bucket} ({tool}) = source", verify(
                        walk_files(os.path.join(s3root, bucket)), big,
                        lambda rel, _p, b=bucket: server.object_mtime_ns(b, rel)), bench)
                    server.drop_bucket(bucket)
        log(f"\nall runs took {time.time() - t_start:.0f} s; s3s-fs peak RSS {server.rss_hwm_kib() / 1024:.0f} MiB")
        report(args, facts, results, bench)
        return 1 if bench.failed else 0
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        if server:
            server.stop()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# the report


def med(runs, key):
    return statistics.median(r[key] for r in runs)


def med_requests(runs):
    ops = sorted({op for r in runs for op in r["requests"]})
    out = {op: statistics.median(r["requests"].get(op, 0) for r in runs) for op in ops}
    varies = any(len({r["requests"].get(op, 0) for r in runs}) > 1 for op in ops)
    return {op: int(n) if n == int(n) else n for op, n in out.items()}, varies


def report(args, facts, results, bench):
    md = []
    title_args = {"files": f"{args.files:,}", "total": args.total_mib, "big": args.big_mib}
    verdicts = []
    log("\n" + "=" * 100)
    log(f"RESULTS: medians of {args.reps} run(s) per tool; requests counted at the server"
        + ("" if args.count_requests else " (NOT counted: --no-request-log)")
        + ("; s3s-fs with TCP_NODELAY (--server-nodelay)" if args.server_nodelay else ""))
    for s in "abcd":
        runs = results.get(s)
        if not runs:
            continue
        title = TITLES[s].format(**title_args)
        by_tool = {}
        for r in runs:
            by_tool.setdefault(r["tool"], []).append(r)
        has_complete = any("complete_wait" in r for r in runs)
        log("\n" + title)
        log(f"  {'tool':<40} {'wall s':>7} {'CPU s':>7} {'RSS MiB':>8} {'s3s-fs CPU s':>13}  requests")
        md.append(f"\n#### {title}\n")
        md.append("| tool | wall s | CPU s (user+sys) | peak RSS MiB | s3s-fs CPU s | requests at the server | wall of each run |")
        md.append("|---|---:|---:|---:|---:|---|---|")
        med_of = {}
        for tool, rs in by_tool.items():
            reqs, varies = med_requests(rs)
            m = {k: med(rs, k) for k in ("wall", "cpu", "rss_mib", "server_cpu")}
            if has_complete and all("complete_wait" in r for r in rs):
                m["complete_wait"] = med(rs, "complete_wait")
            med_of[tool] = m
            req_txt = fmt_requests(reqs) + (" (varied between runs)" if varies else "")
            walls = ", ".join(f"{r['wall']:.2f}" for r in rs)
            log(f"  {tool:<40} {m['wall']:7.2f} {m['cpu']:7.2f} {m['rss_mib']:8.1f} {m['server_cpu']:13.2f}  {req_txt}")
            log(f"  {'':<40} wall of each run: {walls}"
                + (f"; of the median, {m['complete_wait']:.2f} s waiting for the server's CompleteMultipartUpload"
                   if "complete_wait" in m else ""))
            md.append(f"| {tool} | {m['wall']:.2f} | {m['cpu']:.2f} | {m['rss_mib']:.1f} | "
                      f"{m['server_cpu']:.2f} | {req_txt} | {walls} |")
        cs, rc = med_of.get("cloudsync"), med_of.get("rclone")
        if not (cs and rc):
            continue

        def ratio_line(label, a, b, note=""):
            w, c, m = a["wall"] / b["wall"], a["cpu"] / b["cpu"], a["rss_mib"] / b["rss_mib"]
            log(f"  {label:<40} {w:7.2f} {c:7.2f} {m:8.2f}{note}")
            bold = "**" if not note else ""
            md.append(f"| {bold}{label}{bold} | {bold}{w:.2f}{bold} | {bold}{c:.2f}{bold} | {bold}{m:.2f}{bold} | | | |")
            return w, c, m

        wall_r, _, rss_r = ratio_line("ratio cloudsync / rclone", cs, rc)
        extras = [t for t in med_of if t not in ("cloudsync", "rclone")]
        cs_x = [t for t in extras if t.startswith("cloudsync")]
        rc_x = [t for t in extras if t.startswith("rclone")]
        for t in cs_x:
            ratio_line(f"ratio {t} / rclone", med_of[t], rc, "   (extra, not the headline)")
            for u in rc_x:
                ratio_line(f"ratio {t} / {u}", med_of[t], med_of[u], "   (extra: both with one PUT)")
        if "complete_wait" in cs:
            log(f"  note: the server's CompleteMultipartUpload (it re-reads, re-hashes and concatenates the parts "
                f"while the client waits) took {cs['complete_wait']:.2f} s of cloudsync's and "
                f"{rc.get('complete_wait', float('nan')):.2f} s of rclone's median wall time")
            md.append(f"\nThe server's CompleteMultipartUpload (s3s-fs re-reads, re-hashes and concatenates the "
                      f"parts while the client waits) took {cs['complete_wait']:.2f} s of cloudsync's and "
                      f"{rc.get('complete_wait', float('nan')):.2f} s of rclone's median wall time.")
        if s == "d" and not args.server_nodelay:
            log("  note: s3s-fs leaves Nagle on, so a GET on a kept-alive connection often stalls ~40 ms on the "
                "client's delayed ACK; cloudsync leaves delayed-ACK mode before each read (TCP_QUICKACK), rclone "
                "does not, so the stall dominates rclone's (d) (compare --server-nodelay)")
            md.append("\ns3s-fs leaves Nagle on, so a GET on a kept-alive connection often stalls ~40 ms on the "
                      "client's delayed ACK. cloudsync leaves delayed-ACK mode before each read (`TCP_QUICKACK`), rclone "
                      "does not, so the stall dominates rclone's time here (compare `--server-nodelay`).")
        max_wall, max_rss = TARGETS[s]
        checks = [(f"wall time <= {max_wall}x rclone's" if max_wall != 1.0 else "wall time no slower than rclone's",
                   wall_r <= max_wall, f"{wall_r:.3f}x"),
                  (f"peak RSS <= {max_rss}x rclone's", rss_r <= max_rss, f"{rss_r:.3f}x")]
        if s == "b":
            if args.count_requests:
                heads = max(r["requests"].get("HeadObject", 0) for r in by_tool["cloudsync"])
                checks.append(("zero HEAD requests", heads == 0, f"{heads} HeadObject"))
            else:
                checks.append(("zero HEAD requests", None, "not counted (--no-request-log)"))
        md.append("")
        for what, ok, val in checks:
            verdict = "not measured" if ok is None else ("MET" if ok else "MISSED")
            log(f"  target: {what:<40} {verdict:<7} ({val})")
            md.append(f"- target {what}: **{verdict}** ({val})")
            verdicts.append((s, what, verdict, val))
    if results.get("e") and results.get("a"):
        title = TITLES["e"].format(**title_args)
        plain = {k: med([r for r in results["a"] if r["tool"] == "cloudsync"], k) for k in ("wall", "cpu", "rss_mib")}
        ecs = [r for r in results["e"] if r["tool"] == "cloudsync crypt"]
        erc = [r for r in results["e"] if r["tool"] == "rclone crypt"]
        log("\n" + title)
        md.append(f"\n#### {title}\n")
        md.append("| tool | wall s | CPU s (user+sys) | peak RSS MiB | requests at the server | wall of each run |")
        md.append("|---|---:|---:|---:|---|---|")
        meds = {}
        for tool, rs in (("cloudsync (plain, from (a))", [r for r in results["a"] if r["tool"] == "cloudsync"]),
                         ("cloudsync crypt", ecs), ("rclone crypt", erc)):
            if not rs:
                continue
            m = {k: med(rs, k) for k in ("wall", "cpu", "rss_mib")}
            meds[tool] = m
            reqs, _ = med_requests(rs)
            walls = ", ".join(f"{r['wall']:.2f}" for r in rs)
            log(f"  {tool:<40} {m['wall']:7.2f} {m['cpu']:7.2f} {m['rss_mib']:8.1f}  {fmt_requests(reqs)}")
            md.append(f"| {tool} | {m['wall']:.2f} | {m['cpu']:.2f} | {m['rss_mib']:.1f} | {fmt_requests(reqs)} | {walls} |")
        if ecs:
            c = meds["cloudsync crypt"]
            fraction = plain["wall"] / c["wall"]
            ok = fraction >= CRYPT_MIN_FRACTION
            log(f"  crypt throughput / plain throughput (cloudsync): {fraction:.3f}")
            md.append(f"\n- cloudsync crypt push throughput / plain push throughput: **{fraction:.3f}**")
            verdicts.append(("e", f"crypt throughput >= {CRYPT_MIN_FRACTION} of plain", "MET" if ok else "MISSED",
                             f"{fraction:.3f}"))
            if erc:
                r = meds["rclone crypt"]
                w, cpu, rss = c["wall"] / r["wall"], c["cpu"] / r["cpu"], c["rss_mib"] / r["rss_mib"]
                log(f"  ratio cloudsync crypt / rclone crypt: wall {w:.2f}, CPU {cpu:.2f}, peak RSS {rss:.2f}")
                md.append(f"- ratio cloudsync crypt / rclone crypt: wall **{w:.2f}**, CPU **{cpu:.2f}**, "
                          f"peak RSS **{rss:.2f}**")
                verdicts.append(("e", "crypt wall time vs rclone crypt (reported)", "info", f"{w:.3f}x"))
    log("\nTARGETS")
    md.append("\n#### Targets\n")
    md.append("| scenario | target | cloudsync / rclone | met |")
    md.append("|---|---|---|---|")
    for s, what, verdict, val in verdicts:
        log(f"  ({s}) {what:<40} {val:<16} {verdict}")
        md.append(f"| ({s}) | {what} | {val} | {verdict} |")
    if bench.noisy_runs:
        log(f"NOTE: {bench.noisy_runs} run(s) shared the CPU with other processes (NOISY above); "
            "rerun on an idle machine for numbers to record")
    if bench.failed:
        log("SOME RUNS FAILED OR DID NOT VERIFY: see the FAILED / !! lines above")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(md).lstrip() + "\n")
        log(f"tables written to {args.markdown}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"facts": facts, "args": {k: v for k, v in vars(args).items()}, "results": results}, f, indent=1)
        log(f"measurements written to {args.json_out}")


if __name__ == "__main__":
    sys.exit(main())
