"""fabric-remote's remote entry point: runs a pytest selection inside a Spark Job Definition run.

Embedded in the fabric-remote binary, uploaded to the lakehouse as
Files/fabric-remote/entrypoint-<hash>.py and run by the Spark job definition.

Arguments: RUN_DIR [LAKEHOUSE_ABFSS]
  RUN_DIR          the run's folder, relative to the default lakehouse's Files folder
  LAKEHOUSE_ABFSS  abfss://<workspace id>@<host>/<lakehouse id>: mounted with notebookutils
                   when /lakehouse/default is not there

RUN_DIR/run.json (written by fabric-remote) says what to run:
  project        the synced project, relative to Files
  cwd            where pytest starts, relative to the project
  args           pytest's arguments, exactly as the user gave them (a JSON list, never a string)
  nodeids        file in RUN_DIR with the selected node ids, one per line: only these run
  install        install requirements-remote.txt and the project (--no-deps) first
  wheelhouse     folder (relative to Files) that caches wheels, keyed by the requirements' hash
  chunk_seconds  how often a chunk file of the report log is closed

Writes into RUN_DIR:
  report-log.jsonl      pytest-reportlog 1.0 records, flushed per line
  chunks/NNNNNN.jsonl   the same lines, in files closed every few seconds (a lakehouse mount may
                        publish a file only once it is closed)
  junit.xml             xunit1 with captured output (the fallback)
  session.json          how the session ended (shouldfail, shouldstop, tests collected)
  status.json           {"pytest_exit_code": N, ...}, or {"stage": ..., "error": ...} when pytest
                        could not run
  pytest-output.txt, install.log

Exits 0 whenever pytest ran, whatever the tests did, so a failed job means the infrastructure
failed. FABRIC_REMOTE_SKIP_INSTALL=1 (or "install": false) skips the installs (the emulator).

Imported by pytest as a plugin (`-p _fabric_remote_plugin`), the same file writes the report
log and keeps only the selected node ids.
"""

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import traceback

PLUGIN = "_fabric_remote_plugin"


# ---- the entry point ----


def lakehouse_files(abfss):
    """The local path of the default lakehouse's Files folder."""
    root = os.environ.get("FABRIC_EMULATOR_LAKEHOUSE_ROOT")
    if root:
        return os.path.join(root, "Files")
    default = "/lakehouse/default/Files"
    if os.path.isdir(default):
        return default
    if not abfss:
        raise RuntimeError("/lakehouse/default is not mounted and no lakehouse URL was given")
    import notebookutils  # only inside Fabric

    mount = "/fabric-remote-lakehouse"
    notebookutils.fs.mount(abfss, mount, {"fileCacheTimeout": 0})
    return os.path.join(notebookutils.fs.getMountPath(mount), "Files")


def write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def run_logged(cmd, log, **kwargs):
    """Runs cmd, copying its output to the driver log and to `log`; returns (code, output tail)."""
    print("fabric-remote: " + " ".join(cmd), flush=True)
    log.write("$ " + " ".join(cmd) + "\n")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)
    tail = []
    for raw in proc.stdout:
        text = raw.decode("utf-8", "replace")
        sys.stdout.write(text)
        log.write(text)
        tail = (tail + [text.rstrip("\n")])[-40:]
    sys.stdout.flush()
    log.flush()
    return proc.wait(), tail


def without_hashes(req_path, out_path):
    """A copy of a requirements file without --hash options (wheels built from an sdist have
    other hashes; the originals were checked when the wheels were made)."""
    with open(req_path, encoding="utf-8") as f:
        text = f.read().replace("\\\n", " ")
    lines = []
    for line in text.splitlines():
        lines.append(" ".join(t for t in line.split() if not t.startswith("--hash")))
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def build_requires(project):
    try:
        import tomllib

        with open(os.path.join(project, "pyproject.toml"), "rb") as f:
            return list(tomllib.load(f).get("build-system", {}).get("requires", []))
    except Exception:
        return []


class InstallFailed(Exception):
    def __init__(self, what, tail):
        super().__init__(what)
        self.what = what
        self.tail = tail


def install(cfg, run_dir, files, project, work):
    """pip install requirements-remote.txt (through the lakehouse wheelhouse) and the project."""
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    req = os.path.join(run_dir, "requirements-remote.txt")
    with open(req, "rb") as f:
        req_bytes = f.read()
    wanted = [
        line
        for line in req_bytes.decode("utf-8", "replace").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    backend = build_requires(project)
    key = hashlib.sha256(
        req_bytes
        + json.dumps(backend).encode()
        + ("%s-%s-%s" % (sys.version_info[:2], platform.machine(), sys.platform)).encode()
    ).hexdigest()[:16]
    wheelhouse = os.path.join(files, cfg.get("wheelhouse", "fabric-remote/wheelhouse"), key)
    plain = os.path.join(work, "requirements-nohash.txt")
    without_hashes(req, plain)
    with open(os.path.join(run_dir, "install.log"), "w", encoding="utf-8") as log:
        warm = os.path.isfile(os.path.join(wheelhouse, "COMPLETE"))
        if wanted:
            code = 1
            if warm:
                code, tail = run_logged(
                    pip + ["install", "--no-index", "--find-links", wheelhouse, "-r", plain], log
                )
            if code != 0:
                warm = False
                wheels = os.path.join(work, "wheels")
                code, tail = run_logged(pip + ["wheel", "-r", req, "-w", wheels] + backend, log)
                if code != 0:
                    raise InstallFailed("pip could not get requirements-remote.txt", tail)
                code, tail = run_logged(
                    pip + ["install", "--no-index", "--find-links", wheels, "-r", plain], log
                )
                if code != 0:
                    raise InstallFailed("pip install -r requirements-remote.txt failed", tail)
                publish(wheels, wheelhouse)
        links = ["--no-index", "--find-links", wheelhouse] if warm else []
        code, tail = run_logged(pip + ["install", "--no-deps"] + links + [project], log)
        if code != 0 and links:
            code, tail = run_logged(pip + ["install", "--no-deps", project], log)
        if code != 0:
            raise InstallFailed("pip install --no-deps of the project failed", tail)


def publish(wheels, wheelhouse):
    """Copies the wheels to the lakehouse for the next run (best effort). Each file lands
    through a rename, so the shards of a run publishing at once never expose a half-written
    wheel."""
    try:
        os.makedirs(wheelhouse, exist_ok=True)
        names = os.listdir(wheels)
        for name in names + ["COMPLETE"]:
            target = os.path.join(wheelhouse, name)
            tmp = "%s.tmp-%d" % (target, os.getpid())
            if name == "COMPLETE":
                with open(tmp, "w") as f:
                    f.write("\n")
            else:
                shutil.copyfile(os.path.join(wheels, name), tmp)
            os.replace(tmp, target)
    except OSError as e:
        print("fabric-remote: could not keep the wheels for later runs: %s" % e, flush=True)


def read_env_file(path):
    """test.env.remote as fabric-remote writes it: KEY="value" with \\\\ \\" \\n \\r \\t escapes."""
    values = {}
    if not os.path.isfile(path):
        return values
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, raw = line.split("=", 1)
            if len(raw) >= 2 and raw[0] == raw[-1] == '"':
                out, i, raw = [], 0, raw[1:-1]
                while i < len(raw):
                    c = raw[i]
                    if c == "\\" and i + 1 < len(raw):
                        out.append({"n": "\n", "r": "\r", "t": "\t"}.get(raw[i + 1], raw[i + 1]))
                        i += 2
                    else:
                        out.append(c)
                        i += 1
                raw = "".join(out)
            values[key] = raw
    return values


def main(argv):
    if not argv:
        print("usage: entrypoint.py RUN_DIR [LAKEHOUSE_ABFSS]", file=sys.stderr)
        return 2
    files = lakehouse_files(argv[1] if len(argv) > 1 else None)
    run_dir = os.path.join(files, argv[0])
    status_path = os.path.join(run_dir, "status.json")
    stage = "start"
    try:
        with open(os.path.join(run_dir, "run.json"), encoding="utf-8") as f:
            cfg = json.load(f)
        work = tempfile.mkdtemp(prefix="fabric-remote-")
        stage = "copy"
        project = os.path.join(work, "project")
        shutil.copytree(
            os.path.join(files, cfg["project"]),
            project,
            ignore=shutil.ignore_patterns(".fabric-remote-manifest"),
        )
        if cfg.get("install", True) and os.environ.get("FABRIC_REMOTE_SKIP_INSTALL", "") in ("", "0"):
            stage = "install"
            install(cfg, run_dir, files, project, work)
        stage = "pytest"
        os.environ.update(read_env_file(os.path.join(run_dir, "test.env.remote")))
        os.environ["FABRIC_TEST_SPARK_EXEC_MODE"] = "remote"
        plugin_dir = os.path.join(work, "plugin")
        os.makedirs(plugin_dir)
        shutil.copyfile(os.path.abspath(__file__), os.path.join(plugin_dir, PLUGIN + ".py"))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in [plugin_dir, env.get("PYTHONPATH")] if p)
        env["FABRIC_REMOTE_REPORT_DIR"] = run_dir
        env["FABRIC_REMOTE_NODEIDS"] = os.path.join(run_dir, cfg.get("nodeids", "nodeids.txt"))
        env["FABRIC_REMOTE_CHUNK_SECONDS"] = str(cfg.get("chunk_seconds", 2.0))
        cmd = [sys.executable, "-m", "pytest", "-p", PLUGIN] + list(cfg.get("args", []))
        cmd += ["-o", "junit_family=xunit1", "-o", "junit_logging=all"]
        cmd += ["--junitxml=" + os.path.join(run_dir, "junit.xml")]
        cwd = os.path.join(project, cfg.get("cwd", ""))
        with open(os.path.join(run_dir, "pytest-output.txt"), "w", encoding="utf-8") as log:
            code, _ = run_logged(cmd, log, cwd=cwd, env=env)
        session = None
        try:
            with open(os.path.join(run_dir, "session.json"), encoding="utf-8") as f:
                session = json.load(f)
        except (OSError, ValueError):
            pass
        status = {"pytest_exit_code": code, "session": session}
        if session is None:
            status["error"] = "pytest stopped before its session finished (exit code %s)" % code
        write_json(status_path, status)
        print("fabric-remote: pytest exited with %s" % code, flush=True)
        return 0
    except InstallFailed as e:
        detail = "\n".join(e.tail)
        write_json(status_path, {"stage": stage, "error": e.what, "detail": detail})
        last = next((l for l in reversed(e.tail) if l.strip()), "")
        print("fabric-remote: %s: %s" % (e.what, last.strip()), file=sys.stderr, flush=True)
        return 1
    except Exception as e:
        detail = traceback.format_exc()
        try:
            write_json(status_path, {"stage": stage, "error": "%s: %s" % (type(e).__name__, e), "detail": detail})
        except OSError:
            pass
        sys.stderr.write(detail)
        print("fabric-remote: the run stopped at %s: %s: %s" % (stage, type(e).__name__, e), file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

else:
    # ---- the pytest plugin: report log (pytest-reportlog 1.0 records) and the selection ----
    import pytest

    def _cleanup(data):
        out = {}
        for k, v in data.items():
            try:
                json.dumps({k: v})
            except TypeError:
                v = str(v)
            out[k] = v
        return out

    class Recorder:
        def __init__(self, config, out_dir, every):
            self.config = config
            self.out_dir = out_dir
            self.chunks = os.path.join(out_dir, "chunks")
            os.makedirs(self.chunks, exist_ok=True)
            self.file = open(os.path.join(out_dir, "report-log.jsonl"), "w", buffering=1, encoding="utf-8")
            self.lock = threading.Lock()
            self.pending = []
            self.seq = 0
            self.stop = threading.Event()
            self.every = every
            self.thread = threading.Thread(target=self._tick, name="fabric-remote-chunks", daemon=True)
            self.thread.start()

        def _tick(self):
            while not self.stop.wait(self.every):
                self.flush_chunk()

        def flush_chunk(self):
            with self.lock:
                if not self.pending:
                    return
                name = os.path.join(self.chunks, "%06d.jsonl" % (self.seq + 1))
                try:
                    with open(name + ".tmp", "w", encoding="utf-8") as f:
                        f.write("".join(self.pending))
                    os.replace(name + ".tmp", name)
                except OSError:
                    return  # kept for the next chunk
                self.seq += 1
                self.pending = []

        def write(self, data):
            try:
                line = json.dumps(data)
            except TypeError:
                line = json.dumps(_cleanup(data))
            with self.lock:
                self.file.write(line + "\n")
                self.file.flush()
                self.pending.append(line + "\n")

        def close(self):
            self.stop.set()
            self.thread.join()
            self.flush_chunk()
            self.file.close()

        def pytest_sessionstart(self):
            self.write({"pytest_version": pytest.__version__, "$report_type": "SessionStart"})

        def pytest_sessionfinish(self, session, exitstatus):
            self.write({"exitstatus": int(exitstatus), "$report_type": "SessionFinish"})
            write_json(
                os.path.join(self.out_dir, "session.json"),
                {
                    "exitstatus": int(exitstatus),
                    "shouldfail": bool(session.shouldfail),
                    "shouldstop": bool(session.shouldstop),
                    "testscollected": session.testscollected,
                    "testsfailed": session.testsfailed,
                },
            )

        def pytest_runtest_logreport(self, report):
            data = self.config.hook.pytest_report_to_serializable(config=self.config, report=report)
            if "_report_type" in data:
                data["$report_type"] = data.pop("_report_type")
            # pytest-xdist's controller sets `node` (its worker) on every report it relays:
            # not data, and a replaying terminal would take it for a gateway.
            data.pop("node", None)
            self.write(data)

        def pytest_collectreport(self, report):
            if report.failed or report.skipped:
                self.write(self.config.hook.pytest_report_to_serializable(config=self.config, report=report))

        def pytest_warning_recorded(self, warning_message, when, nodeid, location):
            data = {
                "category": warning_message.category.__name__ if warning_message.category else None,
                "filename": warning_message.filename,
                "lineno": warning_message.lineno,
                "message": warning_message.message,
            }
            data.update({"$report_type": "WarningMessage", "when": when, "location": location})
            self.write(data)

    def pytest_configure(config):
        out_dir = os.environ.get("FABRIC_REMOTE_REPORT_DIR")
        if out_dir and not hasattr(config, "workerinput"):
            every = float(os.environ.get("FABRIC_REMOTE_CHUNK_SECONDS", "2"))
            config._fabric_remote = Recorder(config, out_dir, every)
            config.pluginmanager.register(config._fabric_remote, "fabric-remote-recorder")

    def pytest_unconfigure(config):
        recorder = getattr(config, "_fabric_remote", None)
        if recorder is not None:
            recorder.close()
            del config._fabric_remote

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(session, config, items):
        path = os.environ.get("FABRIC_REMOTE_NODEIDS")
        if not path or not os.path.isfile(path):
            return
        with open(path, encoding="utf-8") as f:
            wanted = {line.rstrip("\r\n") for line in f if line.strip()}
        keep = [item for item in items if item.nodeid in wanted]
        if len(keep) != len(items):
            config.hook.pytest_deselected(items=[item for item in items if item.nodeid not in wanted])
            items[:] = keep
