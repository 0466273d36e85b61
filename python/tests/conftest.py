"""Fixtures for the plugin's tests: the binary, one emulator per session, a project's env.

Two ways to run these tests:

- from a checkout (``./scripts/test``): the plugin is imported from ``python/`` and the binary
  is ``target/debug/fabric-remote`` (``PYTHONPATH``, ``PYTEST_PLUGINS``, ``FABRIC_REMOTE_BIN``
  are set for every pytest these tests start);
- against the installed wheel (``.ci/run``): the ``fabric-remote-cli`` distribution is
  installed in the running Python, whose entry point loads the plugin and whose scripts
  folder holds the binary. Nothing is pointed anywhere.

Every ``--remote`` run goes to a real ``fabric-remote emulator`` whose jobs run real pytest
with this same Python.
"""

import importlib.metadata
import json
import os
import pathlib
import subprocess
import sys
import urllib.parse
import urllib.request

import pytest

pytest_plugins = ["pytester"]

REPO = pathlib.Path(__file__).resolve().parents[2]
PYTHON_SRC = REPO / "python"


def installed():
    """True when fabric-remote-cli is installed here (the wheel), not imported from python/."""
    try:
        dist = importlib.metadata.distribution("fabric-remote-cli")
    except importlib.metadata.PackageNotFoundError:
        return False
    import fabric_remote

    return pathlib.Path(fabric_remote.__file__).resolve().is_relative_to(
        pathlib.Path(dist.locate_file("")).resolve()
    )


INSTALLED = installed()
if not INSTALLED:
    sys.path.insert(0, str(PYTHON_SRC))


@pytest.fixture(scope="session")
def binary():
    if INSTALLED:
        from fabric_remote import find_binary

        return find_binary()
    path = REPO / "target" / "debug" / "fabric-remote"
    assert path.is_file(), "build the binary first: cargo build (./scripts/test does)"
    return str(path)


def source_env(binary):
    """What makes a checkout behave like the installed wheel."""
    if INSTALLED:
        return {}
    return {
        "FABRIC_REMOTE_BIN": binary,
        "PYTHONPATH": os.pathsep.join(p for p in [str(PYTHON_SRC), os.environ.get("PYTHONPATH")] if p),
        "PYTEST_PLUGINS": "fabric_remote.plugin",
    }


class Emulator:
    def __init__(self, binary, data_dir):
        env = dict(os.environ)
        # Jobs inherit the emulator's environment: with these they load the plugin as an
        # installed wheel's entry point would.
        env.update(source_env(binary))
        for name in list(env):
            if name.startswith("FABRIC_TEST_"):
                del env[name]
        self.proc = subprocess.Popen(
            [binary, "emulator", "--port", "0", "--data-dir", str(data_dir), "--python", sys.executable],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        first = self.proc.stdout.readline().decode()
        assert first.startswith("listening on "), first
        self.url = first.split("listening on ", 1)[1].strip()
        self.data_dir = pathlib.Path(data_dir)

    def files(self):
        """The emulated lakehouse's Files folder."""
        return self.data_dir / "My Workspace" / "lake.Lakehouse" / "Files"

    def api(self, path):
        req = urllib.request.Request(self.url + path, headers={"Authorization": "Bearer t"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def job(self, sjd_name, job_id):
        """The job instance as the Fabric REST API shows it."""
        ws = next(w for w in self.api("/v1/workspaces")["value"] if w["displayName"] == "My Workspace")
        items = self.api("/v1/workspaces/%s/items" % ws["id"])["value"]
        sjd = next(i for i in items if i["displayName"] == sjd_name)
        return self.api("/v1/workspaces/%s/items/%s/jobs/instances/%s" % (ws["id"], sjd["id"], job_id))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="session")
def emulator(binary, tmp_path_factory):
    emu = Emulator(binary, tmp_path_factory.mktemp("emulator"))
    yield emu
    emu.stop()


@pytest.fixture
def plugin(monkeypatch, binary):
    """pytest processes started by the test load the plugin (and find the binary)."""
    for name, value in source_env(binary).items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def remote(pytester, monkeypatch, emulator, plugin, request):
    """A pytester project set up the way a user's would be for ``pytest --remote`` against
    the emulator; returns the emulator."""
    for name in list(os.environ):
        if name.startswith(("FABRIC_TEST_", "FABRIC_REMOTE_")) and name != "FABRIC_REMOTE_BIN":
            monkeypatch.delenv(name)
    env = {
        "FABRIC_REMOTE_TOKEN": "emulator",
        "FABRIC_REMOTE_ONELAKE_ENDPOINT": emulator.url,
        "FABRIC_REMOTE_API_ENDPOINT": emulator.url,
        "FABRIC_REMOTE_SKIP_INSTALL": "1",
        "FABRIC_REMOTE_CACHE_DIR": str(pytester.path.parent / "fabric-remote-cache"),
        "FABRIC_TEST_WORKSPACE_NAME": "My Workspace",
        "FABRIC_TEST_LAKEHOUSE_NAME": "lake",
        # One SJD per test: a cancelled or failed job never makes another test's run Deduped.
        "FABRIC_TEST_SPARK_JOB_NAME": "t-" + request.node.name[:80].replace("[", "-").replace("]", ""),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    project(pytester).joinpath("requirements-remote.txt").write_text("")
    return emulator


def project(pytester):
    """The project folder of a test: pytester's folder also holds the `stdout`/`stderr` files
    of the pytest it runs, which would change while the project is synced."""
    path = pytester.path / ("p-" + pytester.path.name)
    path.mkdir(exist_ok=True)
    return path
