"""``pytest --remote`` against the emulator prints and returns what a local run does.

Each test writes a small project with pytester, runs it locally and with ``--remote`` (the
emulator runs the job with real pytest), and compares what a user sees: the ``-v`` outcome
lines, the ``-ra`` summary, the final counts, the exit status, the junit XML, the ``--lf``
selection of the next run.
"""

import os
import re
import signal
import textwrap
import time
import xml.etree.ElementTree as ET

import pytest
from conftest import project

ZOO = {
    "tests/helpers_base.py": """
        class Base:
            def test_inherited(self):
                assert self.value == 1
    """,
    "tests/test_zoo.py": """
        import sys
        import warnings

        import pytest

        from helpers_base import Base


        def test_pass():
            pass


        def test_fail():
            print("output before failing")
            assert 1 == 2


        @pytest.fixture
        def broken_setup():
            raise RuntimeError("setup exploded")


        def test_setup_error(broken_setup):
            pass


        @pytest.fixture
        def broken_teardown():
            yield
            raise RuntimeError("teardown exploded")


        def test_teardown_error(broken_teardown):
            pass


        def test_fail_and_teardown_error(broken_teardown):
            assert False, "call failed too"


        @pytest.mark.skip(reason="not here")
        def test_skip_mark():
            pass


        def test_runtime_skip():
            pytest.skip("decided at runtime")


        @pytest.mark.xfail(reason="known bug")
        def test_xfail():
            assert False


        @pytest.mark.xfail(reason="fixed already")
        def test_xpass_non_strict():
            pass


        @pytest.mark.xfail(reason="must fail", strict=True)
        def test_xpass_strict():
            pass


        @pytest.mark.parametrize("value", [1, 2, 3], ids=["one", "two", "a b::c.d[e]"])
        def test_param(value):
            assert value != 2


        def test_subtests(subtests):
            for i in range(3):
                with subtests.test(msg="case", i=i):
                    assert i != 1


        def test_warns():
            warnings.warn("careful now", UserWarning)


        def test_stderr():
            print("to stderr", file=sys.stderr)


        class TestChild(Base):
            value = 1

            class TestNested:
                def test_deep(self):
                    assert "deep" == "shallow"
    """,
}

OUTCOME = re.compile(
    r"^\S+::.* (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS|SUBPASSED|SUBFAILED|SUBSKIPPED|SUBXFAIL)\b"
)


def write(pytester, files, ini="[pytest]\ntestpaths = tests\npythonpath = tests\n"):
    """Writes the project and makes it the working directory."""
    root = project(pytester)
    (root / "pytest.ini").write_text(ini)
    os.chdir(root)
    for path, text in files.items():
        p = root / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"))


def outcome_lines(result):
    return [re.sub(r"\s+", " ", line).strip() for line in result.outlines if OUTCOME.match(line)]


def section(result, title):
    """The lines of a `===== title =====` section (up to the next `=====` line)."""
    lines, inside = [], False
    for line in result.outlines:
        if re.match(r"^=+ .* =+$", line):
            if inside:
                break
            inside = title in line
            continue
        if inside:
            lines.append(line)
    return lines


def summary(result):
    """The final counts line without its duration."""
    return re.sub(r" in [\d.]+s( \([^)]*\))?", "", result.outlines[-1]).strip("= ")


def run(pytester, *args, remote=False):
    args = list(args) + (["--remote"] if remote else [])
    return pytester.runpytest_subprocess(*args, timeout=300)


def test_local_and_remote_runs_print_the_same_outcomes_summary_and_exit_status(pytester, remote):
    write(pytester, ZOO)
    local = run(pytester, "-v", "-ra", "-p", "no:cacheprovider")
    replayed = run(pytester, "-v", "-ra", "-p", "no:cacheprovider", remote=True)
    text = replayed.stdout.str()
    assert "Job URL: https://app.fabric.microsoft.com/" in text, text
    lines = outcome_lines(local)
    assert len(lines) == 23, lines  # the whole zoo, subtests and teardown errors included
    assert outcome_lines(replayed) == lines
    assert section(replayed, "short test summary info") == section(local, "short test summary info")
    assert summary(local) == (
        "7 failed, 7 passed, 2 skipped, 1 xfailed, 1 xpassed, 1 warning, 3 errors, 2 subtests passed"
    )
    assert summary(replayed) == summary(local)
    assert replayed.ret == local.ret == 1
    # The failure sections (tracebacks, captured output) are the same too.
    masked = lambda r: [re.sub(r"0x[0-9a-f]+", "0x?", line) for line in section(r, "FAILURES")]
    assert masked(replayed) == masked(local)
    warnings = [line for line in section(replayed, "warnings summary") if line.strip()]
    assert warnings[:2] == [line for line in section(local, "warnings summary") if line.strip()][:2]
    assert warnings[0] == "tests/test_zoo.py::test_warns", warnings


def junit_outcomes(path):
    rows = []
    for case in ET.parse(str(path)).getroot().iter("testcase"):
        kinds = [
            (child.tag, child.get("type"), child.get("message"), (child.text or "").strip().splitlines()[-1:])
            for child in case
            if child.tag in ("failure", "error", "skipped")
        ]
        rows.append((case.get("classname"), case.get("name"), case.get("file"), case.get("line"), kinds))
    return rows


def test_junitxml_of_the_replayed_run_agrees_with_the_local_one(pytester, remote):
    write(pytester, ZOO)
    run(pytester, "-p", "no:cacheprovider", "--junitxml=local.xml", "-o", "junit_family=xunit1")
    run(pytester, "-p", "no:cacheprovider", "--junitxml=remote.xml", "-o", "junit_family=xunit1", remote=True)
    local, replayed = junit_outcomes(project(pytester) / "local.xml"), junit_outcomes(project(pytester) / "remote.xml")
    assert len(local) == 19, local
    assert replayed == local
    suite = lambda p: {k: v for k, v in ET.parse(str(p)).getroot().find("testsuite").attrib.items() if k in ("tests", "errors", "failures", "skipped")}
    assert suite(project(pytester) / "remote.xml") == suite(project(pytester) / "local.xml")


def test_with_x_the_replayed_run_stops_after_the_first_failure(pytester, remote):
    write(pytester, ZOO)
    local = run(pytester, "-v", "-x", "-p", "no:cacheprovider")
    replayed = run(pytester, "-v", "-x", "-p", "no:cacheprovider", remote=True)
    assert outcome_lines(local) == [
        "tests/test_zoo.py::test_pass PASSED [ 5%]",
        "tests/test_zoo.py::test_fail FAILED [ 11%]",
    ]
    assert outcome_lines(replayed) == outcome_lines(local)
    assert summary(replayed) == summary(local) == "1 failed, 1 passed"
    assert "stopping after 1 failures" in replayed.stdout.str()
    assert replayed.ret == local.ret == 1


def test_maxfail_counts_errors_as_a_local_run_does(pytester, remote):
    write(pytester, ZOO)
    local = run(pytester, "-v", "--maxfail=3", "-p", "no:cacheprovider")
    replayed = run(pytester, "-v", "--maxfail=3", "-p", "no:cacheprovider", remote=True)
    assert len(outcome_lines(local)) == 5
    assert outcome_lines(replayed) == outcome_lines(local)
    assert summary(replayed) == summary(local)


def test_after_a_remote_run_with_failures_lf_selects_exactly_the_failed_tests(pytester, remote):
    write(pytester, ZOO)
    first = run(pytester, "-v", remote=True)
    assert first.ret == 1
    failed = sorted(
        {line.split(" ")[0] for line in outcome_lines(first) if re.search(r" (FAILED|ERROR) ", line)}
    )
    assert len(failed) == 8, failed
    again = run(pytester, "-v", "--lf", remote=True)
    assert "run-last-failure: rerun previous 8 failures" in again.stdout.str()
    ran = sorted({line.split(" ")[0] for line in outcome_lines(again)})
    assert ran == failed
    assert again.ret == 1


def test_durations_come_from_the_remote_reports(pytester, remote):
    write(pytester, {"tests/test_slow.py": "import time\n\ndef test_sleeps():\n    time.sleep(0.6)\n"})
    result = run(pytester, "--durations=1", "--durations-min=0.5", remote=True)
    assert result.ret == 0
    assert re.search(r"^0\.[6-9]\d*s call +tests/test_slow.py::test_sleeps$", result.stdout.str(), re.M), result.stdout.str()


def test_a_remote_only_collection_error_interrupts_like_a_local_one(pytester, remote, monkeypatch):
    files = dict(ZOO)
    files["tests/test_broken.py"] = """
        import os

        if os.environ.get("FABRIC_TEST_SPARK_EXEC_MODE") == "remote":
            raise ImportError("cannot be imported remotely")


        def test_one():
            pass
    """
    write(pytester, files)
    replayed = run(pytester, "-v", "-ra", "-p", "no:cacheprovider", remote=True)
    monkeypatch.setenv("FABRIC_TEST_SPARK_EXEC_MODE", "remote")
    local = run(pytester, "-v", "-ra", "-p", "no:cacheprovider")
    assert local.ret == replayed.ret == 2
    assert summary(replayed) == summary(local) == "1 error"
    assert section(replayed, "short test summary info") == section(local, "short test summary info")
    assert "Interrupted: 1 error during collection" in replayed.stdout.str()
    assert outcome_lines(replayed) == []


def test_with_continue_on_collection_errors_the_rest_runs(pytester, remote, monkeypatch):
    files = {
        "tests/test_ok.py": "def test_ok():\n    pass\n\ndef test_bad():\n    assert 0\n",
        "tests/test_broken.py": "import os\nif os.environ.get('FABRIC_TEST_SPARK_EXEC_MODE') == 'remote':\n    raise ImportError('no')\n\ndef test_one():\n    pass\n",
    }
    write(pytester, files)
    replayed = run(pytester, "-v", "--continue-on-collection-errors", "-p", "no:cacheprovider", remote=True)
    monkeypatch.setenv("FABRIC_TEST_SPARK_EXEC_MODE", "remote")
    local = run(pytester, "-v", "--continue-on-collection-errors", "-p", "no:cacheprovider")
    assert summary(replayed) == summary(local) == "1 failed, 1 passed, 1 error"
    assert replayed.ret == local.ret == 1


def test_an_infrastructure_failure_reports_every_test_as_an_error_with_the_jobs_message(
    pytester, remote, monkeypatch
):
    write(pytester, {"tests/test_a.py": "def test_one():\n    pass\n\ndef test_two():\n    pass\n"})
    # The job's pip install fails (offline, at once): the job ends Failed.
    (project(pytester) / "requirements-remote.txt").write_text("--no-index\nno-such-package-for-fabric-remote==0.0.1\n")
    monkeypatch.delenv("FABRIC_REMOTE_SKIP_INSTALL")
    result = run(pytester, "-v", "-ra", remote=True)
    lines = outcome_lines(result)
    assert lines == ["tests/test_a.py::test_one ERROR [ 50%]", "tests/test_a.py::test_two ERROR [100%]"], result.stdout.str()
    errors = [line for line in section(result, "short test summary info") if line.startswith("ERROR")]
    assert [line.split(" - ")[0] for line in errors] == ["ERROR tests/test_a.py::test_one", "ERROR tests/test_a.py::test_two"]
    assert all(" - fabric-remote: the remote run failed" in line for line in errors), errors
    details = section(result, "ERRORS")
    assert details[0].strip("_ ") == "ERROR at setup of test_one"
    assert details[1].startswith(
        "fabric-remote: the remote run failed before this test had a result: "
        "pip could not get requirements-remote.txt (job https://app.fabric.microsoft.com/"
    ), details
    assert summary(result) == "2 errors"
    assert result.ret == 3


def test_ctrl_c_cancels_the_remote_job(pytester, remote):
    write(
        pytester,
        {"tests/test_hang.py": "import time\n\ndef test_a_quick():\n    pass\n\ndef test_b_hangs():\n    time.sleep(120)\n\ndef test_c_never():\n    pass\n"},
    )
    proc = pytester.popen(
        [__import__("sys").executable, "-m", "pytest", "-v", "--remote", "-p", "no:cacheprovider"],
        stdin=__import__("subprocess").DEVNULL,
    )
    out = []
    deadline = time.monotonic() + 120
    while not any("test_a_quick PASSED" in line for line in out):
        line = proc.stdout.readline().decode()
        assert line and time.monotonic() < deadline, "".join(out)
        out.append(line)
    time.sleep(1)  # test_b is sleeping remotely now
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=200)
    text = "".join(out) + rest.decode()
    assert proc.returncode == 2, text + err.decode()
    assert "Interrupted: cancelling the remote job" in text
    assert "KeyboardInterrupt" in text
    assert "test_c_never" not in text
    job_id = re.search(r"\(job instance ([0-9a-f-]+)\)", text).group(1)
    sjd = __import__("os").environ["FABRIC_TEST_SPARK_JOB_NAME"]
    assert remote.job(sjd, job_id)["status"] == "Cancelled"


def test_collect_only_runs_nothing_remotely(pytester, remote):
    write(pytester, ZOO)
    result = run(pytester, "--collect-only", "-q", remote=True)
    assert result.ret == 0
    assert "Job URL" not in result.stdout.str()
    assert not (remote.files() / "fabric-remote" / "projects" / project(pytester).name).exists()
    assert len([line for line in result.outlines if "::" in line]) == 18


def test_nothing_selected_runs_nothing_remotely(pytester, remote):
    write(pytester, ZOO)
    result = run(pytester, "-k", "no_such_test", remote=True)
    assert result.ret == 5
    assert "Job URL" not in result.stdout.str()


def test_a_configuration_error_is_a_usage_error(pytester, remote, monkeypatch):
    write(pytester, {"tests/test_a.py": "def test_one():\n    pass\n"})
    monkeypatch.delenv("FABRIC_TEST_WORKSPACE_NAME")
    result = run(pytester, remote=True)
    assert result.ret == 4
    assert "ERROR: fabric-remote: FABRIC_TEST_WORKSPACE_NAME is not set" in result.stderr.str()


PROJECT_OPTIONS = {
    "conftest.py": """
        import pytest


        def pytest_addoption(parser):
            parser.addoption("--de", action="store_true", help="only the data engineering tests")
            parser.addoption("--label", default="")


        def pytest_configure(config):
            if config.getoption("remote", default=False) and not config.getoption("de"):
                raise pytest.UsageError("--remote requires --de")
    """,
    "tests/test_options.py": """
        import os


        def test_sees_the_options(pytestconfig):
            assert pytestconfig.getoption("de")
            assert pytestconfig.getoption("label") == "two words; and 'quotes'"
            assert not pytestconfig.getoption("remote", default=False)
            assert os.environ["FABRIC_TEST_SPARK_EXEC_MODE"] == "remote"
    """,
}


def test_a_projects_own_options_reach_the_remote_pytest_exactly(pytester, remote):
    write(pytester, PROJECT_OPTIONS)
    result = run(pytester, "-v", "--de", "--label", "two words; and 'quotes'", remote=True)
    assert outcome_lines(result) == ["tests/test_options.py::test_sees_the_options PASSED [100%]"], result.stdout.str()
    assert result.ret == 0


def test_a_projects_conftest_can_require_an_option_with_remote(pytester, remote):
    write(pytester, PROJECT_OPTIONS)
    result = run(pytester, remote=True)
    assert result.ret == 4
    assert "ERROR: --remote requires --de" in result.stderr.str()


def test_shards_without_remote_is_a_usage_error(pytester, plugin):
    write(pytester, {"tests/test_a.py": "def test_one():\n    pass\n"})
    result = run(pytester, "--shards", "2")
    assert result.ret == 4
    assert "--shards only applies with --remote" in result.stderr.str()


def shards_supported(binary):
    out = __import__("subprocess").run([binary, "run", "--help"], capture_output=True, text=True)
    return "--shards" in out.stdout


def test_shards_split_the_run_and_report_as_one_session(pytester, remote, binary):
    if not shards_supported(binary):
        pytest.skip("this fabric-remote has no run --shards yet")
    write(pytester, ZOO)
    local = run(pytester, "-v", "-ra", "-p", "no:cacheprovider")
    replayed = run(pytester, "-v", "-ra", "-p", "no:cacheprovider", "--shards", "2", remote=True)
    strip = lambda r: sorted(re.sub(r" \[ *\d+%\]$", "", line) for line in outcome_lines(r))
    assert strip(replayed) == strip(local)
    assert sorted(section(replayed, "short test summary info")) == sorted(section(local, "short test summary info"))
    assert summary(replayed) == summary(local)
    assert replayed.ret == local.ret == 1


def test_a_selected_test_the_remote_did_not_run_is_an_error_never_a_pass(pytester, remote):
    write(
        pytester,
        {
            "conftest.py": """
                import os


                def pytest_collection_modifyitems(items):
                    if os.environ.get("FABRIC_TEST_SPARK_EXEC_MODE") == "remote":
                        items[:] = [i for i in items if "dropped" not in i.name]
            """,
            "tests/test_a.py": "def test_kept():\n    pass\n\ndef test_dropped_remotely():\n    pass\n",
        },
    )
    result = run(pytester, "-v", "-ra", "-vv", remote=True)
    assert outcome_lines(result) == [
        "tests/test_a.py::test_kept PASSED [ 50%]",
        "tests/test_a.py::test_dropped_remotely ERROR [100%]",
    ]
    assert (
        "ERROR tests/test_a.py::test_dropped_remotely - fabric-remote: the remote run gave no result "
        "for this test (remote pytest exit status 0) (job https://app.fabric.microsoft.com/"
    ) in result.stdout.str()
    assert summary(result) == "1 passed, 1 error"
    assert result.ret == 1
