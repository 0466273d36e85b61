"""Replays a remote pytest session's report-log records through the local session's hooks.

A *record* is one pytest-reportlog 1.0 line as `fabric-remote run --stream-reports` passes it
on: ``SessionStart``, ``TestReport``, ``SubTestReport``, failed or skipped ``CollectReport``,
``WarningMessage``, ``SessionFinish``. Each is rebuilt with ``pytest_report_from_serializable``
and handed to the same hooks a local run calls, the way pytest-xdist's controller replays its
workers: ``pytest_runtest_logstart`` before an item's first report, ``pytest_runtest_logreport``
for each, ``pytest_runtest_logfinish`` after its teardown, ``pytest_collectreport`` for remote
collection failures, ``pytest_warning_recorded`` for warnings. Terminal output, junit XML,
``--lf``'s cache, ``--durations`` and the exit status therefore come from pytest itself.

JSON has no tuples, so ``location``, skip ``longrepr``, ``sections`` and ``user_properties``
are turned back into tuples; ``location`` and ``keywords`` are the local item's. Absolute paths
of the remote project copy are mapped onto the local rootdir. Nothing here starts processes or
prints; the plugin feeds records in and asks what is missing at the end.
"""

import builtins
import os
import re
import warnings

import pytest
from _pytest.reports import CollectErrorRepr

try:  # pytest >= 9: failed subtests turn their test's call report into a failure
    from _pytest.subtests import failed_subtests_key
except ImportError:  # pragma: no cover - older pytest
    failed_subtests_key = None


class PathMap:
    """Maps absolute paths of the remote project copy onto the local rootdir.

    The remote root is learnt from the first absolute path that ends with the rootdir-relative
    path of a locally collected file; paths elsewhere (site-packages) are left alone.
    """

    def __init__(self, rootdir, local_files):
        self.rootdir = str(rootdir)
        rels = set()
        for f in local_files:
            try:
                rel = os.path.relpath(str(f), self.rootdir)
            except ValueError:
                continue
            if not rel.startswith(".."):
                rels.add(rel.replace(os.sep, "/"))
        self.rels = sorted(rels, key=len, reverse=True)
        self.remote_root = None

    def local(self, path):
        if not isinstance(path, str) or not os.path.isabs(path):
            return path
        posix = path.replace(os.sep, "/")
        if self.remote_root is None:
            for rel in self.rels:
                if posix.endswith("/" + rel):
                    self.remote_root = posix[: -len(rel) - 1]
                    break
        if self.remote_root is not None and posix.startswith(self.remote_root + "/"):
            return os.path.join(self.rootdir, *posix[len(self.remote_root) + 1 :].split("/"))
        return path

    def text(self, text):
        """``text`` with the remote project's absolute paths in it made local."""
        for candidate in re.findall(r"/[^\s'\"():]+", text):
            self.local(candidate)
        if self.remote_root is None:
            return text
        return text.replace(self.remote_root + "/", self.rootdir.rstrip(os.sep) + os.sep)


_categories = {}


def warning_category(name):
    """The warning class named ``name``: a builtin or pytest's own, else a stand-in subclass."""
    if not name:
        return UserWarning
    for where in (builtins, pytest):
        found = getattr(where, name, None)
        if isinstance(found, type) and issubclass(found, Warning):
            return found
    if name not in _categories:
        _categories[name] = type(name, (UserWarning,), {"__module__": "remote"})
    return _categories[name]


def _tuples(value):
    return [tuple(v) if isinstance(v, list) else v for v in value or ()]


class Replay:
    """Feeds records into a session; remembers which items got a complete result."""

    def __init__(self, session, items, local_collect, local_warnings, paths, properties=None):
        self.session = session
        self.config = session.config
        self.hook = session.config.hook
        self.items = {item.nodeid: item for item in items}
        self.order = [item.nodeid for item in items]
        self.local_collect = local_collect
        self.local_warnings = local_warnings
        self.paths = paths
        #: (name, value) -> (name, value) for each user property (None: keep them as sent)
        self.properties = properties
        self.started = set()
        self.finished = set()
        self.last_finished = ""
        #: nodeids of replayed failed / skipped remote collect reports
        self.collect_failed = []
        self.collect_skipped = []
        self.remote_exitstatus = None
        self.remote_pytest = None
        #: set once the local session decided to stop (-x, --maxfail, shouldstop)
        self.stop = None
        self.reports = 0

    # ---- records ----

    def record(self, data):
        """Replays one record; unknown record types are ignored (reportlog's rule)."""
        kind = data.get("$report_type") or data.get("_report_type")
        if kind == "SessionStart":
            self.remote_pytest = data.get("pytest_version")
        elif kind == "SessionFinish":
            self.remote_exitstatus = data.get("exitstatus")
        elif self.stop is not None:
            return  # the local session has stopped: report nothing more, as pytest would
        elif kind in ("TestReport", "SubTestReport"):
            self._test_report(data, kind)
        elif kind == "CollectReport":
            self._collect_report(data)
        elif kind == "WarningMessage":
            self._warning(data)

    def _rebuild(self, data, kind):
        data = dict(data)
        if kind == "SubTestReport":
            # reportlog 1.0 writes `$report_type`; pytest's subtests plugin reads `_report_type`.
            data.pop("$report_type", None)
            data["_report_type"] = "SubTestReport"
        report = self.hook.pytest_report_from_serializable(config=self.config, data=data)
        if report is None:
            return None
        context = getattr(report, "context", None)
        sent = data.get("_subtest.context")
        if context is not None and isinstance(sent, dict) and isinstance(sent.get("kwargs"), dict):
            # The remote already applied saferepr to the values; pytest's rebuild would apply
            # it again (`i='1'` instead of `i=1`). Keep the strings as sent.
            object.__setattr__(context, "kwargs", dict(sent["kwargs"]))
        if isinstance(report.longrepr, list):
            report.longrepr = tuple(report.longrepr)
        if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
            path, lineno, reason = report.longrepr
            report.longrepr = (self.paths.local(path), lineno, reason)
        else:
            self._map_repr_paths(report.longrepr)
        report.sections = _tuples(getattr(report, "sections", ()))
        if hasattr(report, "user_properties"):
            report.user_properties = _tuples(report.user_properties)
            if self.properties is not None:
                report.user_properties = [self.properties(p) for p in report.user_properties]
        return report

    def _map_repr_paths(self, longrepr):
        crash = getattr(longrepr, "reprcrash", None)
        if crash is not None and hasattr(crash, "path"):
            crash.path = self.paths.local(crash.path)
        tracebacks = [getattr(longrepr, "reprtraceback", None)]
        tracebacks += [t for t, _, _ in getattr(longrepr, "chain", None) or ()]
        for tb in tracebacks:
            for entry in getattr(tb, "reprentries", None) or ():
                loc = getattr(entry, "reprfileloc", None)
                if loc is not None:
                    loc.path = self.paths.local(loc.path)

    def _test_report(self, data, kind):
        report = self._rebuild(data, kind)
        if report is None:
            return
        nodeid = report.nodeid
        item = self.items.get(nodeid)
        if item is not None:
            report.location = item.location
            report.keywords = {k: 1 for k in item.keywords}
        elif isinstance(report.location, list):
            report.location = tuple(report.location)
        if nodeid not in self.started:
            self.started.add(nodeid)
            self.hook.pytest_runtest_logstart(nodeid=nodeid, location=report.location)
        if (
            kind == "SubTestReport"
            and failed_subtests_key is not None
            and report.failed
            and failed_subtests_key in self.config.stash
        ):
            self.config.stash[failed_subtests_key][report.id] += 1
        self.reports += 1
        self.hook.pytest_runtest_logreport(report=report)
        if report.when == "teardown" and kind == "TestReport":
            self._finish(nodeid, report.location)

    def _finish(self, nodeid, location):
        self.finished.add(nodeid)
        self.last_finished = nodeid
        self.hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)
        self._check_stop()

    def _check_stop(self):
        if self.session.shouldfail:
            self.stop = self.session.Failed(self.session.shouldfail)
        elif self.session.shouldstop:
            self.stop = self.session.Interrupted(self.session.shouldstop)

    def _collect_report(self, data):
        report = self._rebuild(data, "CollectReport")
        if report is None or report.passed:
            return
        if report.failed and isinstance(report.longrepr, str):
            # What pytest itself makes of a collector's message (no "- message" in -ra).
            report.longrepr = CollectErrorRepr(self.paths.text(report.longrepr))
        outcome = "failed" if report.failed else "skipped"
        # The same module failed or was skipped in the local collection too: already reported.
        if (report.nodeid, outcome) in self.local_collect:
            return
        (self.collect_failed if report.failed else self.collect_skipped).append(report.nodeid)
        self.hook.pytest_collectreport(report=report)
        self._check_stop()

    def _warning(self, data):
        when = data.get("when")
        message = str(data.get("message"))
        filename = data.get("filename") or ""
        key = (when, data.get("category"), message, data.get("lineno"), os.path.basename(filename))
        if when in ("config", "collect") and key in self.local_warnings:
            return  # raised by the local collection as well
        wm = warnings.WarningMessage(
            message=message,
            category=warning_category(data.get("category")),
            filename=self.paths.local(filename),
            lineno=data.get("lineno") or 0,
        )
        location = data.get("location")
        if isinstance(location, list):
            location = tuple(location)
        # pytest records a test's warnings right after its teardown, without its id in the log.
        nodeid = self.last_finished if when == "runtest" else ""
        self.hook.pytest_warning_recorded.call_historic(
            kwargs=dict(warning_message=wm, when=when, nodeid=nodeid, location=location)
        )

    # ---- the end ----

    def missing(self):
        """Selected items without a complete result, except those whose module the remote
        collection failed or skipped (that report stands for them, as it would locally)."""
        covered = self.collect_failed + self.collect_skipped
        out = []
        for nodeid in self.order:
            if nodeid in self.finished:
                continue
            if any(nodeid == c or nodeid.startswith(c + "::") or nodeid.startswith(c + "/") for c in covered):
                continue
            out.append(nodeid)
        return out

    def crash(self, nodeid, message):
        """Reports ``nodeid`` as an error with ``message`` (pytest-xdist's crashed-item pattern,
        as a setup error when it never started, else at teardown), unless the session stopped."""
        if self.stop is not None:
            return
        item = self.items[nodeid]
        location = item.location
        keywords = {k: 1 for k in item.keywords}

        def report(when, outcome, longrepr):
            rep = pytest.TestReport(nodeid, location, keywords, outcome, longrepr, when)
            self.hook.pytest_runtest_logreport(report=rep)

        if nodeid not in self.started:
            self.started.add(nodeid)
            self.hook.pytest_runtest_logstart(nodeid=nodeid, location=location)
            report("setup", "failed", message)
            report("teardown", "passed", None)
        else:
            report("teardown", "failed", message)
        self._finish(nodeid, location)
