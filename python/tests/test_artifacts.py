"""Mounted mode: dbt's project_root, profiles_root and logs_dir follow FABRIC_TEST_SPARK_EXEC_MODE.

The fixture project imports :mod:`fabric_remote.dbt`'s fixtures the way a dbt adapter's
conftest would (dbt itself is not needed: its ``prefix`` fixture is stood in for), writes into
the folders like dbt's helpers do, and fails one test so the artifact summary shows.
"""

import os
import re
import subprocess
import xml.etree.ElementTree as ET

from conftest import project
from test_replay import outcome_lines, run, section, write

PREFIX = "testprefix0001"
DBT_PROJECT = {
    "conftest.py": """
        import pytest

        from fabric_remote.dbt import logs_dir, profiles_root, project_root  # noqa: F401


        @pytest.fixture(scope="class")
        def prefix():  # dbt-core's makes a unique one per class
            return "%s"
    """
    % PREFIX,
    "tests/test_dbt.py": """
        import os

        import py


        class TestProject:
            def test_folders(self, project_root, profiles_root, logs_dir):
                assert isinstance(project_root, py.path.local)
                assert isinstance(profiles_root, py.path.local)
                assert isinstance(logs_dir, str)
                assert os.environ["DBT_LOG_PATH"] == logs_dir
                models = project_root.mkdir("models")  # as dbt's write_project_files does
                models.join("model.sql").write("select 1 as id")
                profiles_root.join("profiles.yml").write("test: {}")
                print("FOLDERS|%s|%s|%s" % (project_root, profiles_root, logs_dir))

            def test_fails(self, project_root):
                assert False, "look at the artifacts"
    """,
}


def folders(result):
    line = next(l for l in result.outlines if l.startswith("FOLDERS|"))
    return line.split("|")[1:]


def artifact_rows(result):
    return [line for line in section(result, "artifacts of failed tests")]


def test_without_a_mode_the_folders_are_dbt_cores(pytester, plugin, monkeypatch):
    monkeypatch.delenv("FABRIC_TEST_SPARK_EXEC_MODE", raising=False)
    write(pytester, DBT_PROJECT)
    result = run(pytester, "-s", "-p", "no:cacheprovider")
    assert result.ret == 1
    project_root, profiles_root, logs_dir = folders(result)
    basetemp = str(pytester.path / "runpytest-0")
    assert project_root.startswith(basetemp) and os.path.basename(project_root).startswith("project")
    assert profiles_root.startswith(basetemp) and os.path.basename(profiles_root).startswith("profile")
    assert logs_dir == str(project(pytester) / "logs" / PREFIX)
    assert artifact_rows(result) == []
    assert "=== Test project_root: " + project_root in result.stdout.str()


def test_mounted_mode_puts_them_under_the_onelake_path_and_names_them_for_failures(
    pytester, plugin, monkeypatch, tmp_path
):
    onelake = tmp_path / "OneLake - lake" / "Files"
    onelake.mkdir(parents=True)
    monkeypatch.setenv("FABRIC_TEST_SPARK_EXEC_MODE", "mounted")
    monkeypatch.setenv("FABRIC_TEST_ONELAKE_PATH", str(onelake))
    write(pytester, DBT_PROJECT)
    result = run(pytester, "-s", "-p", "no:cacheprovider")
    assert result.ret == 1
    base = onelake / "dbt-test-artifacts" / PREFIX
    assert folders(result) == [str(base / "project"), str(base / "profile"), str(base / "logs")]
    assert (base / "project" / "models" / "model.sql").read_text() == "select 1 as id"
    assert (base / "profile" / "profiles.yml").is_file()
    assert (base / "logs").is_dir()
    assert artifact_rows(result) == [
        "tests/test_dbt.py::TestProject::test_fails",
        "    logs_dir: %s" % (base / "logs"),
        "    profiles_root: %s" % (base / "profile"),
        "    project_root: %s" % (base / "project"),
    ]


def test_mounted_mode_without_the_onelake_path_is_one_clear_error(pytester, plugin, monkeypatch):
    monkeypatch.setenv("FABRIC_TEST_SPARK_EXEC_MODE", "mounted")
    monkeypatch.delenv("FABRIC_TEST_ONELAKE_PATH", raising=False)
    write(pytester, DBT_PROJECT)
    result = run(pytester, "-ra", "-vv", "-p", "no:cacheprovider")
    assert result.ret == 1
    assert [l for l in section(result, "short test summary info")] == [
        "ERROR tests/test_dbt.py::TestProject::test_folders - Failed: FABRIC_TEST_SPARK_EXEC_MODE=mounted "
        "needs FABRIC_TEST_ONELAKE_PATH: set it to the local folder where the lakehouse's Files folder is mounted",
        "ERROR tests/test_dbt.py::TestProject::test_fails - Failed: FABRIC_TEST_SPARK_EXEC_MODE=mounted "
        "needs FABRIC_TEST_ONELAKE_PATH: set it to the local folder where the lakehouse's Files folder is mounted",
    ]


def test_remote_mode_puts_them_in_the_lakehouse_and_prints_where_for_failures(
    pytester, remote, binary, tmp_path
):
    write(pytester, DBT_PROJECT)
    result = run(pytester, "-v", "-p", "no:cacheprovider", "--junitxml=out.xml", remote=True)
    assert outcome_lines(result) == [
        "tests/test_dbt.py::TestProject::test_folders PASSED [ 50%]",
        "tests/test_dbt.py::TestProject::test_fails FAILED [100%]",
    ]
    base = remote.files() / "dbt-test-artifacts" / PREFIX
    assert (base / "project" / "models" / "model.sql").read_text() == "select 1 as id"
    url = "%s/My Workspace/lake.Lakehouse/Files/dbt-test-artifacts/%s" % (remote.url, PREFIX)
    assert artifact_rows(result) == [
        "tests/test_dbt.py::TestProject::test_fails",
        "    logs_dir: %s/logs" % url,
        "    profiles_root: %s/profile" % url,
        "    project_root: %s/project" % url,
        "fetch a folder with: fabric-remote sync URL LOCAL_DIR",
    ]
    # junit carries them as properties of the failing test (and only of it).
    props = {}
    for case in ET.parse(str(project(pytester) / "out.xml")).getroot().iter("testcase"):
        props[case.get("name")] = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["test_folders"] == {}
    assert props["test_fails"] == {
        "fabric-remote artifact logs_dir": url + "/logs",
        "fabric-remote artifact profiles_root": url + "/profile",
        "fabric-remote artifact project_root": url + "/project",
    }
    # The printed URL is one fabric-remote itself can fetch.
    dest = tmp_path / "fetched"
    fetched = subprocess.run([binary, "sync", url + "/project", str(dest)], capture_output=True, text=True)
    assert fetched.returncode == 0, fetched.stderr
    assert (dest / "models" / "model.sql").read_text() == "select 1 as id"
