"""Starts the built `fabric-remote emulator --tls` for Microsoft's own Python clients.

The binary comes from `FABRIC_REMOTE_BIN` (default `target/debug/fabric-remote`). Its
first stdout line gives the URL; the CA it writes to its data directory is what the SDKs
are told to trust (they refuse bearer tokens over plain HTTP). The emulator is stopped
(SIGTERM) when the session ends.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.core.credentials import AccessToken

ROOT = Path(__file__).resolve().parents[3]


class FakeCredential:
    """A TokenCredential that hands out a fixed token; the emulator accepts any."""

    def __init__(self):
        self.scopes = []

    def get_token(self, *scopes, **kwargs):
        self.scopes.extend(scopes)
        return AccessToken("emulator-token", int(time.time()) + 3600)

    def get_token_info(self, *scopes, options=None):
        from azure.core.credentials import AccessTokenInfo

        self.scopes.extend(scopes)
        return AccessTokenInfo("emulator-token", int(time.time()) + 3600)


@dataclass
class Emu:
    url: str
    ca: str
    data_dir: Path
    workspace: str = "My Workspace"
    lakehouse: str = "lake"

    @property
    def files_dir(self) -> Path:
        return self.data_dir / self.workspace / f"{self.lakehouse}.Lakehouse" / "Files"

    def kwargs(self):
        """Client options every SDK client needs here: trust the emulator's CA."""
        return {"connection_verify": self.ca}


def _start(extra):
    binary = Path(os.environ.get("FABRIC_REMOTE_BIN", ROOT / "target/debug/fabric-remote"))
    if not binary.is_absolute():
        binary = ROOT / binary
    if not binary.exists():
        pytest.exit(f"{binary} does not exist; run `cargo build` first (or set FABRIC_REMOTE_BIN)", 2)
    data_dir = Path(tempfile.mkdtemp(prefix="fabric-emulator-clients-"))
    proc = subprocess.Popen(
        [str(binary), "emulator", "--port", "0", "--tls", "--data-dir", str(data_dir),
         "--python", sys.executable, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stdout.readline().strip()
    prefix = "listening on "
    if not line.startswith(prefix):
        proc.kill()
        pytest.exit(f"the emulator did not start: {line!r}", 2)
    return proc, Emu(url=line[len(prefix):], ca=str(data_dir / ".emulator" / "ca.pem"), data_dir=data_dir)


def _stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def emu():
    # Fabric LROs as 202s every time, short and quick, so the SDK's pollers are exercised.
    proc, e = _start(["--lro-rate", "1", "--retry-after-secs", "1"])
    yield e
    _stop(proc)


@pytest.fixture
def credential():
    return FakeCredential()
