"""The package as installed: the binary beside it, `python -m fabric_remote`, the entry point."""

import os
import subprocess
import sys
import sysconfig

import pytest
from conftest import INSTALLED, source_env

import fabric_remote


def test_python_m_fabric_remote_runs_the_binary(binary, monkeypatch):
    env = dict(os.environ)
    env.update(source_env(binary))
    out = subprocess.run(
        [sys.executable, "-m", "fabric_remote", "--version"], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "fabric-remote 0.1.0"


def test_a_missing_binary_is_one_sentence(monkeypatch, tmp_path):
    monkeypatch.setenv("FABRIC_REMOTE_BIN", str(tmp_path / "nope"))
    with pytest.raises(fabric_remote.BinaryNotFound, match=r"FABRIC_REMOTE_BIN=.*nope is not an executable file"):
        fabric_remote.find_binary()


@pytest.mark.skipif(not INSTALLED, reason="checks the installed wheel (scripts/test-wheel, CI)")
def test_the_wheel_puts_the_binary_beside_the_package_and_registers_the_plugin(pytester, monkeypatch):
    monkeypatch.delenv("FABRIC_REMOTE_BIN", raising=False)
    assert fabric_remote.find_binary() == os.path.join(sysconfig.get_path("scripts"), "fabric-remote")
    version = subprocess.run([fabric_remote.find_binary(), "--version"], capture_output=True, text=True)
    assert version.stdout.strip() == "fabric-remote 0.1.0"
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--help")
    assert "--remote" in result.stdout.str()
    header = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert "plugins: fabric-remote-cli-0.1.0" in header.stdout.str()
