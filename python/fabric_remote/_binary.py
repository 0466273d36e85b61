"""Finds the `fabric-remote` binary: the one installed beside this package, else PATH.

``FABRIC_REMOTE_BIN`` names another build (a development checkout's ``target/debug``).
"""

import os
import shutil
import sys
import sysconfig

BINARY = "fabric-remote"


class BinaryNotFound(RuntimeError):
    """No `fabric-remote` binary where the package looks for it."""


def _scripts_dirs():
    yield sysconfig.get_path("scripts")
    # `pip install --user` puts scripts in the user scheme.
    scheme = {"posix": "posix_user", "nt": "nt_user"}.get(os.name)
    if scheme:
        try:
            yield sysconfig.get_path("scripts", scheme=scheme)
        except KeyError:
            pass
    # A venv's python may be a symlink; its own folder is the venv's bin.
    yield os.path.dirname(sys.executable)


def find_binary():
    """The path of the `fabric-remote` executable this package should run."""
    override = os.environ.get("FABRIC_REMOTE_BIN")
    if override:
        if os.path.isfile(override) and os.access(override, os.X_OK):
            return override
        raise BinaryNotFound(
            "FABRIC_REMOTE_BIN=%s is not an executable file: point it at a fabric-remote "
            "binary or unset it" % override
        )
    name = BINARY + (".exe" if os.name == "nt" else "")
    for folder in _scripts_dirs():
        if folder:
            path = os.path.join(folder, name)
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return path
    found = shutil.which(BINARY)
    if found:
        return found
    raise BinaryNotFound(
        "cannot find the fabric-remote binary: install it into this environment "
        "(pip install fabric-remote-cli, or uv add --dev fabric-remote-cli) or set "
        "FABRIC_REMOTE_BIN to its path"
    )
