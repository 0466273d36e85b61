#!/usr/bin/env python3
"""Side-by-side sync benchmark: fabric-remote, azcopy and rclone on the same tree.

Run through `benches/peers/run`, which installs the tools, builds fabric-remote in release
mode and starts this script in a private network namespace (so the byte counters see only
the benchmark's traffic). Not part of CI.

What it does:
  * generates a seeded tree (default 10,000 files, ~115 MB: mostly 1-16 KB, one file in
    a thousand of 1-5 MB) laid out like a Python project with a `.venv`;
  * starts Azurite (blob only, in memory) on 127.0.0.1:10000 and `fabric-remote emulator`
    on 127.0.0.1:7070, afresh for every group, each writing a request log;
  * runs five scenarios per tool: initial upload, no-op re-sync, every file touched, 1% of
    the files rewritten, 10% deleted. Each scenario starts from the pristine tree restored
    from a snapshot: group A restores it, uploads (timed), re-syncs (timed) and touches
    every file (timed); groups B and C restore it, upload untimed into a fresh container,
    then rewrite 1% (B) or delete 10% (C) and sync (timed). Tools take turns within each
    group, in a rotating order, and each group is repeated --runs times; the table shows
    medians;
  * prints one table: wall seconds, ratio to the best peer (azcopy, rclone), HTTP
    requests (counted in the server's request log), bytes the client sent (an nftables
    counter on the server port), client CPU seconds and peak RSS (/usr/bin/time).

The fair comparison is `fabric-remote (Blob, Azurite)`: the same server and API as azcopy
and rclone. `fabric-remote (DFS, emulator)` (`--api dfs` against `fabric-remote emulator`)
is a second row: the DFS request pattern, on a faster server.
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request

AZURITE_PORT = 10000  # rclone's emulator mode and our URLs assume it; fine in a private netns
EMULATOR_PORT = 7070
ACCOUNT = "devstoreaccount1"
# Azurite's published development key (not a secret).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
PRISTINE_MTIME = 1_700_000_000
REQUEST_LINE = re.compile(r'"(GET|PUT|HEAD|POST|DELETE|PATCH|OPTIONS) ')

SCENARIOS = [
    ("upload", "initial upload"),
    ("noop", "no-op re-sync"),
    ("touch", "every file touched"),
    ("rewrite", "1% rewritten"),
    ("delete", "10% deleted"),
]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the tree

def generate(root, files, seed):
    """Writes the seeded tree under `root`; returns (file count, bytes)."""
    rng = random.Random(seed)
    big = max(1, files // 1000)
    small = files - big
    pkgs = [f"pkg{i:02d}_{rng.choice(['core', 'utils', 'io', 'net', 'ml', 'web'])}" for i in range(60)]
    areas = ["api", "models", "services", "cli", "jobs", "storage"]
    paths = set()

    def small_path(i):
        r = rng.random()
        if r < 0.70:
            pkg = rng.choice(pkgs)
            depth = rng.randint(0, 3)
            subs = [f"sub{rng.randint(0, 4)}" for _ in range(depth)]
            name = rng.choice([f"module_{i:05d}.py", f"module_{i:05d}.pyi", f"data_{i:05d}.json"])
            return os.path.join(".venv", "lib", "python3.11", "site-packages", pkg, *subs, name)
        if r < 0.85:
            area = rng.choice(areas)
            return os.path.join("src", "app", area, f"sub{rng.randint(0, 3)}", f"mod_{i:05d}.py")
        if r < 0.93:
            return os.path.join("tests", rng.choice(areas), f"test_{i:05d}.py")
        if r < 0.97:
            return os.path.join("docs", rng.choice(["guide", "api", "howto"]), f"page_{i:05d}.md")
        return os.path.join("notebooks", f"nb_{i:05d}.ipynb")

    total = 0
    entries = []
    for i in range(small):
        p = small_path(i)
        while p in paths:
            p = small_path(i + files)
        paths.add(p)
        entries.append((p, rng.randint(1024, 16 * 1024)))
    for i in range(big):
        entries.append((os.path.join("data", f"table_{i:03d}.parquet"), rng.randint(1 << 20, 5 << 20)))
    for rel, size in entries:
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(rng.randbytes(size))
        os.utime(path, (PRISTINE_MTIME, PRISTINE_MTIME))
        total += size
    return len(entries), total


def all_files(root):
    out = []
    for d, _, names in os.walk(root):
        for n in names:
            out.append(os.path.relpath(os.path.join(d, n), root))
    return sorted(out)


def restore(pristine, tree):
    if os.path.exists(tree):
        shutil.rmtree(tree)
    subprocess.run(["cp", "-a", pristine, tree], check=True)


def touch_all(tree):
    now = time.time()
    for rel in all_files(tree):
        os.utime(os.path.join(tree, rel), (now, now))


def rewrite(tree, share, seed):
    rng = random.Random(seed)
    files = all_files(tree)
    chosen = rng.sample(files, max(1, round(len(files) * share)))
    for rel in chosen:
        path = os.path.join(tree, rel)
        size = os.path.getsize(path)
        with open(path, "wb") as f:
            f.write(rng.randbytes(size))
    return len(chosen)


def delete(tree, share, seed):
    rng = random.Random(seed)
    files = all_files(tree)
    chosen = rng.sample(files, max(1, round(len(files) * share)))
    for rel in chosen:
        os.unlink(os.path.join(tree, rel))
    return len(chosen)


# ---------------------------------------------------------------- servers

def account_sas():
    """An account SAS (blob service, all resource types) for Azurite's account."""
    version, expiry, perms = "2019-12-12", "2099-01-01T00:00:00Z", "rwdlacup"
    to_sign = f"{ACCOUNT}\n{perms}\nb\nsco\n\n{expiry}\n\n\n{version}\n"
    sig = base64.b64encode(hmac.new(base64.b64decode(KEY), to_sign.encode(), hashlib.sha256).digest()).decode()
    q = urllib.parse.quote
    return f"sv={version}&ss=b&srt=sco&sp={perms}&se={q(expiry, safe='')}&sig={q(sig, safe='')}"


def container_request(method, name, sas):
    url = f"http://127.0.0.1:{AZURITE_PORT}/{ACCOUNT}/{name}?restype=container&{sas}"
    req = urllib.request.Request(url, method=method, data=b"" if method == "PUT" else None)
    urllib.request.urlopen(req, timeout=60).read()


def wait_for_line(path, needle, proc, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(path, errors="replace") as f:
                text = f.read()
        except FileNotFoundError:
            text = ""
        if needle in text:
            return text
        if proc.poll() is not None:
            sys.exit(f"error: {what} exited: {text[-2000:]}")
        time.sleep(0.1)
    sys.exit(f"error: {what} did not start within {timeout} s")


class Servers:
    """Azurite and the emulator, started afresh for every group (Azurite 3.35 in memory was
    seen to stall after some 130,000 requests and deleted containers), each writing a
    request log of its own."""

    def __init__(self, work, tools_bin, fr_bin):
        self.work, self.tools_bin, self.fr_bin = work, tools_bin, fr_bin
        self.azurite = self.emulator = None
        self.n = 0

    def restart(self):
        self.stop()
        self.n += 1
        d = os.path.join(self.work, f"servers-{self.n:03d}")
        os.makedirs(os.path.join(d, "azurite"), exist_ok=True)
        self.dir = d
        self.az_log = os.path.join(d, "azurite.log")
        self.emu_log = os.path.join(d, "emulator.log")
        self.azurite = subprocess.Popen(
            [os.path.join(self.tools_bin, "azurite-blob"), "--inMemoryPersistence", "--blobHost", "127.0.0.1",
             "--blobPort", str(AZURITE_PORT), "--disableTelemetry", "--skipApiVersionCheck", "--loose"],
            stdout=open(self.az_log, "w"), stderr=subprocess.STDOUT, cwd=os.path.join(d, "azurite"))
        wait_for_line(self.az_log, "successfully listens", self.azurite, "Azurite")
        out = os.path.join(d, "emulator.out")
        self.emulator = subprocess.Popen(
            [self.fr_bin, "emulator", "--port", str(EMULATOR_PORT), "--workspace", "bench", "--lakehouse", "lake",
             "--data-dir", os.path.join(d, "emulator-data"), "--access-log", self.emu_log],
            stdout=open(out, "w"), stderr=subprocess.DEVNULL)
        wait_for_line(out, "listening on", self.emulator, "the emulator")

    def requests(self, server):
        path = self.az_log if server == "azurite" else self.emu_log
        try:
            with open(path, errors="replace") as f:
                if server == "azurite":
                    return sum(1 for line in f if REQUEST_LINE.search(line))
                return sum(1 for line in f if line.strip())
        except FileNotFoundError:
            return 0

    def stop(self):
        if self.emulator is not None:
            self.emulator.send_signal(signal.SIGINT)
        if self.azurite is not None:
            self.azurite.terminate()
        for p in (self.emulator, self.azurite):
            if p is None:
                continue
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.azurite = self.emulator = None
        if self.n:
            shutil.rmtree(self.dir, ignore_errors=True)


class Counters:
    """nftables byte counters on traffic *to* each server port (what clients send)."""

    def __init__(self):
        self.ok = False
        if shutil.which("nft") is None or os.environ.get("PEERS_NETNS") != "1":
            return
        rules = [
            "add table inet peers",
            "add chain inet peers out { type filter hook output priority 0 ; }",
            f"add rule inet peers out tcp dport {AZURITE_PORT} counter comment \"azurite\"",
            f"add rule inet peers out tcp dport {EMULATOR_PORT} counter comment \"emulator\"",
        ]
        try:
            for r in rules:
                subprocess.run(["nft"] + r.split(" "), check=True, capture_output=True)
            self.ok = True
        except (subprocess.CalledProcessError, OSError):
            self.ok = False

    def bytes(self, server):
        if not self.ok:
            return None
        out = subprocess.run(["nft", "-j", "list", "chain", "inet", "peers", "out"],
                             check=True, capture_output=True, text=True).stdout
        for item in json.loads(out)["nftables"]:
            rule = item.get("rule")
            if rule and rule.get("comment") == server:
                for e in rule["expr"]:
                    if "counter" in e:
                        return e["counter"]["bytes"]
        return None


# ---------------------------------------------------------------- tools

class Tool:
    server = "azurite"
    peer = True

    def __init__(self, ctx):
        self.ctx = ctx

    def available(self):
        return None  # or a reason it is skipped

    def prepare(self, group):
        """Creates the empty destination of one group; returns its name."""
        name = f"g{group:03d}-{self.slug}"
        container_request("PUT", name, self.ctx.sas)
        return name


class Azcopy(Tool):
    label, slug = "azcopy", "azcopy"

    def command(self, tree, dest, scratch):
        env = {"AZCOPY_LOG_LOCATION": os.path.join(scratch, "logs"),
               "AZCOPY_JOB_PLAN_LOCATION": os.path.join(scratch, "plans"),
               "AZCOPY_DISABLE_SYSLOG": "true"}
        url = f"http://127.0.0.1:{AZURITE_PORT}/{ACCOUNT}/{dest}/proj?{self.ctx.sas}"
        return [self.ctx.tool("azcopy"), "sync", tree, url, "--from-to", "LocalBlob", "--recursive",
                "--delete-destination=true"], env


class Rclone(Tool):
    label, slug, flags = "rclone", "rclone", []

    def command(self, tree, dest, scratch):
        conf = os.path.join(scratch, "rclone.conf")
        open(conf, "w").close()
        env = {"RCLONE_CONFIG": conf, "RCLONE_CONFIG_AZ_TYPE": "azureblob",
               "RCLONE_CONFIG_AZ_SAS_URL": f"http://127.0.0.1:{AZURITE_PORT}/{ACCOUNT}/{dest}?{self.ctx.sas}"}
        return [self.ctx.tool("rclone"), "sync", tree, f"az:{dest}/proj"] + self.flags, env


class RcloneChecksum(Rclone):
    label, slug, flags = "rclone --checksum", "rclonesum", ["--checksum"]


class FabricRemoteDfs(Tool):
    label, slug, server, peer = "fabric-remote (DFS, emulator)", "frdfs", "emulator", False

    def prepare(self, group):
        return f"g{group:03d}"

    def command(self, tree, dest, scratch):
        env = {"FABRIC_REMOTE_TOKEN": "bench", "FABRIC_REMOTE_CACHE_DIR": self.ctx.cache_dir(dest)}
        url = f"http://127.0.0.1:{EMULATOR_PORT}/bench/lake.Lakehouse/Files/{dest}"
        return [self.ctx.fr_bin, "sync", tree, url, "--api", "dfs", "--json"], env


class FabricRemoteBlob(Tool):
    label, slug, peer = "fabric-remote (Blob, Azurite)", "frblob", False

    def available(self):
        help_text = subprocess.run([self.ctx.fr_bin, "sync", "--help"], capture_output=True, text=True).stdout
        if "--api" not in help_text:
            return "this build's `sync` has no --api (an older fabric-remote)"
        return None

    def command(self, tree, dest, scratch):
        env = {"FABRIC_REMOTE_CACHE_DIR": self.ctx.cache_dir(dest)}
        url = f"http://127.0.0.1:{AZURITE_PORT}/{ACCOUNT}/{dest}/proj"
        return [self.ctx.fr_bin, "sync", tree, url, "--api", "blob", "--json"], env


TOOLS = {"fabric-remote-dfs": FabricRemoteDfs, "fabric-remote-blob": FabricRemoteBlob,
         "azcopy": Azcopy, "rclone": Rclone, "rclone-checksum": RcloneChecksum}


# ---------------------------------------------------------------- running

class Context:
    def __init__(self, args):
        self.args = args
        self.work = os.path.abspath(args.work)
        self.fr_bin = os.path.abspath(args.bin)
        self.tools_bin = os.path.abspath(args.tools_bin)
        self.sas = account_sas()
        self.results = []  # dicts

    def tool(self, name):
        return os.path.join(self.tools_bin, name)

    def cache_dir(self, dest):
        return os.path.join(self.work, "cache", dest)


def timed(ctx, servers, counters, tool, tree, dest, scenario, rep, record=True):
    scratch = os.path.join(ctx.work, "scratch", f"{dest}-{scenario}")
    os.makedirs(scratch, exist_ok=True)
    argv, extra = tool.command(tree, dest, scratch)
    env = dict(os.environ, **extra)
    time_file = os.path.join(scratch, "time")
    before_req = servers.requests(tool.server)
    before_bytes = counters.bytes(tool.server)
    start = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "-o", time_file] + argv,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=scratch)
    wall = time.monotonic() - start
    time.sleep(0.6)  # the request logs are written asynchronously (the emulator's every 200 ms)
    after_req = servers.requests(tool.server)
    after_bytes = counters.bytes(tool.server)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).decode(errors="replace")[-3000:]
        sys.exit(f"error: {tool.label} failed in {scenario} ({proc.returncode}): {' '.join(argv)}\n{tail}")
    with open(time_file) as f:
        e, user, system, rss = f.read().split()[-4:]
    row = {"tool": tool.label, "peer": tool.peer, "scenario": scenario, "rep": rep, "wall": wall,
           "requests": after_req - before_req,
           "bytes": None if before_bytes is None else after_bytes - before_bytes,
           "cpu": float(user) + float(system), "rss_kb": int(rss)}
    if tool.slug.startswith("fr"):
        try:
            row["json"] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            pass
    shutil.rmtree(scratch, ignore_errors=True)
    if record:
        ctx.results.append(row)
        log(f"  {scenario:8} {tool.label:32} {wall:7.2f} s  {row['requests']:6} requests"
            + (f"  {row['json']}" if "json" in row else ""))
    return row


def group_a(ctx, servers, counters, tool, rep, group):
    tree = os.path.join(ctx.work, "tree")
    restore(os.path.join(ctx.work, "pristine"), tree)
    dest = tool.prepare(group)
    timed(ctx, servers, counters, tool, tree, dest, "upload", rep)
    timed(ctx, servers, counters, tool, tree, dest, "noop", rep)
    touch_all(tree)
    timed(ctx, servers, counters, tool, tree, dest, "touch", rep)


def group_bc(ctx, servers, counters, tool, rep, group, scenario):
    tree = os.path.join(ctx.work, "tree")
    restore(os.path.join(ctx.work, "pristine"), tree)
    dest = tool.prepare(group)
    timed(ctx, servers, counters, tool, tree, dest, "prepare", rep, record=False)
    if scenario == "rewrite":
        rewrite(tree, 0.01, ctx.args.seed + 1 + rep)
    else:
        delete(tree, 0.10, ctx.args.seed + 2 + rep)
    timed(ctx, servers, counters, tool, tree, dest, scenario, rep)


def fmt_bytes(n):
    if n is None:
        return "n/a"
    for unit in ["B", "KB", "MB", "GB"]:
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000


def table(ctx, tools, files, size):
    lines = []
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines.append(f"{files} files, {size / 1e6:.1f} MB, median of {ctx.args.runs} run(s); {stamp}; "
                 f"{os.cpu_count()} CPUs ({platform_line()})")
    lines.append("")
    lines.append("| scenario | tool | wall s | × best peer | requests | bytes sent | CPU s | peak RSS |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for key, title in SCENARIOS:
        med = {}
        for t in tools:
            rows = [r for r in ctx.results if r["tool"] == t.label and r["scenario"] == key]
            if not rows:
                continue
            def m(k):
                vals = [r[k] for r in rows if r[k] is not None]
                return statistics.median(vals) if vals else None
            med[t.label] = {k: m(k) for k in ("wall", "requests", "bytes", "cpu", "rss_kb")}
        peers = [med[t.label]["wall"] for t in tools if t.peer and t.label in med]
        best = min(peers) if peers else None
        for t in tools:
            if t.label not in med:
                continue
            v = med[t.label]
            ratio = f"{v['wall'] / best:.2f}" if best else "n/a"
            lines.append(f"| {title} | {t.label} | {v['wall']:.2f} | {ratio} | {v['requests']:.0f} | "
                         f"{fmt_bytes(v['bytes'])} | {v['cpu']:.2f} | {v['rss_kb'] / 1024:.0f} MB |")
    return "\n".join(lines)


def platform_line():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return sys.platform


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--tools", default="fabric-remote-dfs,fabric-remote-blob,azcopy,rclone,rclone-checksum")
    ap.add_argument("--work", required=True)
    ap.add_argument("--bin", required=True, help="the fabric-remote binary")
    ap.add_argument("--tools-bin", required=True, help="directory with azurite-blob, azcopy, rclone")
    args = ap.parse_args()
    ctx = Context(args)
    if os.environ.get("PEERS_NETNS") == "1":
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    os.makedirs(ctx.work, exist_ok=True)
    tools = []
    for name in args.tools.split(","):
        if name not in TOOLS:
            sys.exit(f"error: unknown tool `{name}`; choose from {', '.join(TOOLS)}")
        t = TOOLS[name](ctx)
        why = t.available()
        if why:
            log(f"note: {t.label} skipped: {why}")
        else:
            tools.append(t)
    pristine = os.path.join(ctx.work, "pristine")
    if os.path.exists(pristine):
        shutil.rmtree(pristine)
    files, size = generate(pristine, args.files, args.seed)
    log(f"tree: {files} files, {size / 1e6:.1f} MB (seed {args.seed})")
    counters = Counters()
    if not counters.ok:
        log("note: no nftables counters (needs root, nft and a private network namespace): bytes sent shows n/a")
    servers = Servers(ctx.work, ctx.tools_bin, ctx.fr_bin)
    try:
        group = 0
        for rep in range(args.runs):
            for gi, kind in enumerate(["A", "B", "C"]):
                shift = (rep + gi) % len(tools)
                for tool in tools[shift:] + tools[:shift]:
                    group += 1
                    servers.restart()
                    if kind == "A":
                        group_a(ctx, servers, counters, tool, rep, group)
                    else:
                        group_bc(ctx, servers, counters, tool, rep, group, "rewrite" if kind == "B" else "delete")
    finally:
        servers.stop()
    text = table(ctx, tools, files, size)
    with open(os.path.join(ctx.work, "results.json"), "w") as f:
        json.dump(ctx.results, f, indent=1)
    with open(os.path.join(ctx.work, "table.md"), "w") as f:
        f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
