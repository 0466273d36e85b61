"""The pytest plugin: ``pytest --remote`` runs the selected tests inside a Fabric Spark job.

Registered through the ``pytest11`` entry point of the `fabric-remote-cli` wheel. Collection
is pytest's own, on this machine, with the user's arguments. Then, instead of running the
items, a ``tryfirst`` ``pytest_runtestloop`` writes their node ids to a file and runs::

    fabric-remote run --nodeids-from FILE --stream-reports [--shards N] -- ARGS…

where ARGS are the session's own arguments exactly as given (``--remote`` and this plugin's
options left out), so a project's options (``--de``, ``--with-grants``…) reach the remote
pytest unchanged. Each report-log record the binary streams while the job runs is replayed
through pytest's hooks at once (:mod:`fabric_remote._replay`), so ``-v`` lines appear as
the remote tests finish and everything pytest derives from reports — ``-ra``, ``-x``,
``--junitxml``, ``--durations``, the summary line, the exit status, ``--lf`` next time — is
what a local run gives.

When the job fails (infrastructure, exit status 3 of the binary) every selected test without
a result is reported as an ERROR carrying the job's message, and pytest exits with 3. Ctrl-C
cancels the remote job and waits (bounded) for it to stop.

Always active, with or without ``--remote``: failing reports carry the artifact folders that
:mod:`fabric_remote.dbt`'s fixtures recorded, and the terminal summary lists them.
"""

import os
import re
import signal
import tempfile
import time

import pytest

from . import artifacts
from ._binary import BinaryNotFound, find_binary
from ._replay import PathMap, Replay
from ._stream import END, NOISE, RECORD, STDERR, Stream

#: Exit status of the session when the remote infrastructure failed (as `fabric-remote run`).
INFRASTRUCTURE_FAILED = 3
#: How long to wait for the job to stop after a Ctrl-C (the binary itself waits 120 s).
CANCEL_WAIT = 180.0
#: After a second Ctrl-C the binary stops waiting; give it this long to write its last record.
STOP_WAIT = 15.0
_STATUS_LINE = re.compile(r"^\[\d+(:\d\d)+\] ")


def pytest_addoption(parser):
    group = parser.getgroup("fabric-remote", "fabric-remote (run the tests inside Fabric Spark)")
    group.addoption(
        "--remote",
        action="store_true",
        default=False,
        help="run the selected tests inside a Fabric Spark job (fabric-remote run) and "
        "report them here as if they ran locally",
    )
    group.addoption(
        "--shards",
        type=int,
        default=None,
        metavar="N",
        help="with --remote: split the selected tests over N Spark job runs "
        "(fabric-remote run --shards N)",
    )


def forwarded_args(args):
    """The session's arguments for the remote pytest: all of them, minus this plugin's."""
    out = []
    it = iter(args)
    for arg in it:
        if arg == "--remote":
            continue
        if arg == "--shards":
            next(it, None)
            continue
        if arg.startswith("--shards="):
            continue
        out.append(arg)
    return out


def pytest_configure(config):
    shards = config.getoption("shards")
    if not config.getoption("remote"):
        if shards is not None:
            raise pytest.UsageError("--shards only applies with --remote: add --remote or drop --shards")
        return
    if shards is not None and shards < 1:
        raise pytest.UsageError("--shards %s: give a whole number of at least 1" % shards)
    if config.getoption("usepdb", False) or config.getoption("trace", False):
        raise pytest.UsageError("--pdb and --trace cannot debug a remote run: run without --remote to debug")
    workers = getattr(config.option, "numprocesses", None)
    if workers not in (None, 0, "0"):
        raise pytest.UsageError(
            "-n (pytest-xdist) and --remote do not combine: the remote run is one pytest "
            "session; use --shards N to split it over several Spark jobs"
        )
    config.pluginmanager.register(RemoteSession(config), "fabric-remote-session")


class RemoteSession:
    """The ``--remote`` session: hands the selection to the binary and replays its stream."""

    def __init__(self, config):
        self.config = config
        self.session = None
        self.running = False
        self.local_collect = set()
        self.local_warnings = set()
        self.finish = None
        self.remote_pytest = None
        #: stderr lines for the summary (those after the first report, minus status lines)
        self.notes = []
        #: stderr lines already shown live (before the first report)
        self.said = []
        self.infrastructure_failed = False

    # -- what the local collection reported, so the replay does not report it twice --

    @pytest.hookimpl
    def pytest_sessionstart(self, session):
        self.session = session

    @pytest.hookimpl
    def pytest_collectreport(self, report):
        if not self.running and (report.failed or report.skipped):
            self.local_collect.add((report.nodeid, "failed" if report.failed else "skipped"))

    @pytest.hookimpl
    def pytest_warning_recorded(self, warning_message, when, nodeid, location):
        if not self.running:
            category = getattr(warning_message.category, "__name__", None)
            self.local_warnings.add(
                (
                    when,
                    category,
                    str(warning_message.message),
                    warning_message.lineno,
                    os.path.basename(str(warning_message.filename)),
                )
            )

    # -- the run --

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session):
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            return None  # pytest's own loop stops the session with its usual words
        if session.config.option.collectonly or not session.items:
            return None
        try:
            binary = find_binary()
        except BinaryNotFound as e:
            raise pytest.UsageError(str(e)) from None
        self.running = True
        items = list(session.items)
        with tempfile.TemporaryDirectory(prefix="fabric-remote-") as tmp:
            ids = os.path.join(tmp, "nodeids.txt")
            with open(ids, "w", encoding="utf-8") as f:
                f.write("".join(item.nodeid + "\n" for item in items))
            argv = [binary, "run", "--nodeids-from", ids, "--stream-reports"]
            shards = self.config.getoption("shards")
            if shards is not None:
                argv += ["--shards", str(shards)]
            argv += ["--"] + forwarded_args(self.config.invocation_params.args)
            files = {str(item.path) for item in items}
            replay = Replay(
                session,
                items,
                self.local_collect,
                self.local_warnings,
                PathMap(self.config.rootpath, files),
                properties=_local_property,
            )
            try:
                stream = Stream(argv, cwd=str(self.config.invocation_params.dir))
            except OSError as e:
                raise pytest.UsageError("cannot run %s: %s" % (binary, e)) from None
            interrupted = self._follow(stream, replay)
        self.remote_pytest = replay.remote_pytest
        if interrupted:
            raise KeyboardInterrupt
        if replay.stop is not None:
            raise replay.stop
        self._conclude(session, replay)
        return True

    def _terminal(self):
        return self.config.pluginmanager.get_plugin("terminalreporter")

    def _say(self, line):
        tr = self._terminal()
        if tr is not None:
            tr.write_line(line)

    def _follow(self, stream, replay):
        """Replays records until the binary's finish record; returns the Ctrl-C count."""
        interrupts = 0
        deadline = None
        quiet = self.config.get_verbosity() < 0
        previous = _sigterm_as_interrupt()
        try:
            while True:
                try:
                    if deadline is not None and time.monotonic() > deadline:
                        stream.kill()
                        break
                    event = stream.next(timeout=0.2)
                    if event is None:
                        continue
                    kind, value = event
                    if kind == END:
                        break
                    if kind == RECORD:
                        if value.get("$report_type") == "FabricRemoteFinish":
                            self.finish = value
                            continue  # the stream ends right after
                        replay.record(value)
                    elif kind == STDERR:
                        self._stderr_line(value, live=replay.reports == 0 and not interrupts and not quiet)
                    elif kind == NOISE:
                        self.notes.append(value)
                except KeyboardInterrupt:
                    interrupts += 1
                    if interrupts == 1:
                        self._say("Interrupted: cancelling the remote job and waiting for it to stop (Ctrl-C again to stop waiting)")
                        stream.interrupt()
                        deadline = time.monotonic() + CANCEL_WAIT
                    elif interrupts == 2:
                        self._say("Interrupted again: no longer waiting for the remote job to stop")
                        stream.interrupt()
                        deadline = time.monotonic() + STOP_WAIT
                    else:
                        stream.kill()
                        break
        finally:
            _restore_sigterm(previous)
            status = stream.wait(timeout=STOP_WAIT)
            if self.finish is None and not interrupts:
                said = [line for line in self.said + self.notes if line.strip()]
                errors = [line for line in said if line.startswith("error:")]
                last = (errors or said or [""])[-1]
                self.finish = {
                    # 2: the binary refused its arguments (an older fabric-remote?)
                    "exitstatus": 2 if status == 2 else INFRASTRUCTURE_FAILED,
                    "job_state": None,
                    "failure_reason": "fabric-remote exited with status %s without saying how the run ended%s"
                    % (status, (": " + last) if last else ""),
                    "job_url": None,
                    "stopped": None,
                }
        return interrupts

    def _stderr_line(self, line, live):
        if live:
            self.said.append(line)
            self._say(line)
        elif not _STATUS_LINE.match(line) and line.strip():
            self.notes.append(line)

    def _conclude(self, session, replay):
        finish = self.finish or {}
        exitstatus = finish.get("exitstatus")
        reason = finish.get("failure_reason") or ""
        job_url = finish.get("job_url")
        stopped = finish.get("stopped")
        state = finish.get("job_state")
        if exitstatus == 2 and not finish.get("job_id") and not stopped and replay.reports == 0:
            # Configuration: nothing ran (no workspace, no credentials…).
            raise pytest.UsageError("fabric-remote: %s" % (reason or "the remote run could not start"))
        if exitstatus == 4 or replay.remote_exitstatus == 4:
            raise pytest.UsageError(
                "the remote pytest stopped with a usage error%s" % (": " + reason if reason else "")
                + " (its output is pytest-output.txt in the run's folder)"
            )
        where = " (job %s)" % job_url if job_url else ""
        if exitstatus == INFRASTRUCTURE_FAILED or state in ("Failed", "Deduped"):
            self.infrastructure_failed = True
            message = "fabric-remote: the remote run failed before this test had a result: %s%s" % (
                reason or "the job %s" % (state or "failed"),
                where,
            )
            for nodeid in replay.missing():
                replay.crash(nodeid, message)
            if replay.stop is not None:
                raise replay.stop
            return
        if stopped:
            message = "fabric-remote: the remote run was stopped (%s) before this test had a result%s" % (
                reason or stopped,
                where,
            )
            for nodeid in replay.missing():
                replay.crash(nodeid, message)
            raise session.Interrupted(reason or "the remote run was stopped (%s)" % stopped)
        errors = len(replay.collect_failed)
        if errors and not self.config.option.continue_on_collection_errors:
            raise session.Interrupted(
                "%d error%s during collection" % (errors, "s" if errors != 1 else "")
            )
        message = "fabric-remote: the remote run gave no result for this test (remote pytest exit status %s)%s" % (
            replay.remote_exitstatus,
            where,
        )
        for nodeid in replay.missing():
            replay.crash(nodeid, message)
        if replay.stop is not None:
            raise replay.stop

    # -- the end --

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter):
        finish = self.finish
        if finish is None:
            return
        lines = list(self.notes)
        reason = finish.get("failure_reason")
        if reason and not any(reason in line for line in lines):
            lines.append(reason)
        if (
            self.remote_pytest
            and self.remote_pytest != pytest.__version__
            and terminalreporter.verbosity >= 0
        ):
            lines.append("note: the remote side ran pytest %s, this one is %s" % (self.remote_pytest, pytest.__version__))
        if not lines or (terminalreporter.verbosity < 0 and not self.infrastructure_failed):
            return
        terminalreporter.section("fabric-remote", sep="-")
        for line in lines:
            terminalreporter.line(line)

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config):
        # After the terminal summary (which pytest prints only for its own statuses).
        if self.infrastructure_failed and self.session is not None:
            if self.session.exitstatus in (0, 1):
                self.session.exitstatus = INFRASTRUCTURE_FAILED


def _sigterm_as_interrupt():
    """While the remote run is followed, SIGTERM cancels it like Ctrl-C does."""
    if os.name != "posix":
        return None

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        return None


def _restore_sigterm(previous):
    if previous is not None:
        try:
            signal.signal(signal.SIGTERM, previous)
        except ValueError:
            pass


# ---- always on: the artifact folders of failing tests ----


_failed_key = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        item.stash[_failed_key] = True
    # The teardown report too: junitxml writes the properties of a test's last report.
    if report.failed or (report.when == "teardown" and item.stash.get(_failed_key, False)):
        found = artifacts.recorded(item)
        if found:
            report.user_properties = list(report.user_properties) + [
                (artifacts.PROPERTY_PREFIX + name, where) for name, where in found
            ]
    return report


def _local_url(where):
    endpoint = os.environ.get("FABRIC_REMOTE_ONELAKE_ENDPOINT", "").rstrip("/")
    if endpoint and where.startswith(artifacts.ONELAKE_DFS + "/"):
        return endpoint + where[len(artifacts.ONELAKE_DFS) :]
    return where


def _local_property(prop):
    """A replayed artifact property, its OneLake URL on the endpoint this machine uses."""
    if isinstance(prop, tuple) and len(prop) == 2 and isinstance(prop[1], str):
        name, value = prop
        if isinstance(name, str) and name.startswith(artifacts.PROPERTY_PREFIX):
            return name, _local_url(value)
    return prop


def pytest_terminal_summary(terminalreporter):
    rows = {}
    for key in ("failed", "error"):
        for report in terminalreporter.stats.get(key, []):
            props = [
                (name[len(artifacts.PROPERTY_PREFIX) :], _local_url(str(value)))
                for name, value in getattr(report, "user_properties", ())
                if isinstance(name, str) and name.startswith(artifacts.PROPERTY_PREFIX)
            ]
            if props:
                rows.setdefault(report.nodeid, {}).update(props)
    if not rows:
        return
    terminalreporter.section("artifacts of failed tests")
    urls = False
    for nodeid, props in rows.items():
        terminalreporter.line(nodeid)
        for name, where in sorted(props.items()):
            terminalreporter.line("    %s: %s" % (name, where))
            urls = urls or "://" in where
    if urls:
        terminalreporter.line("fetch a folder with: fabric-remote sync URL LOCAL_DIR")
