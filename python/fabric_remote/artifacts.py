"""Where a test's artifacts (a dbt project, its profile, its logs) go in mounted and remote mode.

``FABRIC_TEST_SPARK_EXEC_MODE`` says where the tests run:

- empty (or unset): on this machine, artifacts in pytest's temporary folders as usual;
- ``mounted``: on this machine with the lakehouse's ``Files`` folder mounted at
  ``FABRIC_TEST_ONELAKE_PATH`` (OneLake file explorer, blobfuse…): artifacts go to
  ``$FABRIC_TEST_ONELAKE_PATH/dbt-test-artifacts/<prefix>/``;
- ``remote``: inside a Fabric Spark job (``pytest --remote`` / ``fabric-remote run`` set it):
  artifacts go to ``<default lakehouse>/Files/dbt-test-artifacts/<prefix>/``.

So that a failure can be looked into, each folder used by a test is also recorded on its
reports (``user_properties``); the plugin prints them under the failing test in the local
terminal, as an OneLake URL when the test ran remotely.

The ready-made dbt fixtures built on these functions live in :mod:`fabric_remote.dbt`.
"""

import os
import pathlib

import pytest

MODE_VAR = "FABRIC_TEST_SPARK_EXEC_MODE"
ONELAKE_PATH_VAR = "FABRIC_TEST_ONELAKE_PATH"
#: The folder under the redirected base that holds one folder per test class.
ARTIFACTS_FOLDER = "dbt-test-artifacts"
#: user_properties name prefix of a recorded artifact folder.
PROPERTY_PREFIX = "fabric-remote artifact "
ONELAKE_DFS = "https://onelake.dfs.fabric.microsoft.com"

_stash_key = pytest.StashKey[dict]()


class ArtifactsError(RuntimeError):
    """The mode asks for a redirect that cannot be made (one sentence, what to do)."""


def mode():
    """``""``, ``"mounted"`` or ``"remote"``; anything else is an error."""
    value = os.environ.get(MODE_VAR, "").strip().lower()
    if value not in ("", "mounted", "remote"):
        raise ArtifactsError(
            "%s=%s is not a mode: use mounted, remote, or leave it empty"
            % (MODE_VAR, os.environ.get(MODE_VAR))
        )
    return value


def lakehouse_files():
    """The local path of the job's default lakehouse ``Files`` folder (remote mode)."""
    emulated = os.environ.get("FABRIC_EMULATOR_LAKEHOUSE_ROOT")
    if emulated:
        return pathlib.Path(emulated) / "Files"
    default = pathlib.Path("/lakehouse/default/Files")
    if default.is_dir():
        return default
    try:  # the entry point mounts the lakehouse itself when the job has no default one
        import notebookutils  # only inside Fabric

        return pathlib.Path(notebookutils.fs.getMountPath("/fabric-remote-lakehouse")) / "Files"
    except Exception:
        pass
    raise ArtifactsError(
        "%s=remote but no lakehouse is mounted (no /lakehouse/default/Files): give the Spark "
        "job definition a default lakehouse" % MODE_VAR
    )


def base_dir():
    """The folder that holds ``<prefix>/…`` in the current mode, or ``None`` for no redirect."""
    current = mode()
    if current == "mounted":
        root = os.environ.get(ONELAKE_PATH_VAR, "").strip()
        if not root:
            raise ArtifactsError(
                "%s=mounted needs %s: set it to the local folder where the lakehouse's Files "
                "folder is mounted" % (MODE_VAR, ONELAKE_PATH_VAR)
            )
        if not os.path.isdir(root):
            raise ArtifactsError(
                "%s=%s is not a folder: mount the lakehouse's Files folder there or fix the path"
                % (ONELAKE_PATH_VAR, root)
            )
        return pathlib.Path(root) / ARTIFACTS_FOLDER
    if current == "remote":
        return lakehouse_files() / ARTIFACTS_FOLDER
    return None


def artifact_dir(prefix, name):
    """``<base>/<prefix>/<name>``, created; ``None`` when the mode does not redirect."""
    base = base_dir()
    if base is None:
        return None
    path = base / prefix / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def display(path):
    """How a user finds ``path`` from their own machine: the path itself, or in remote mode
    the OneLake URL of the lakehouse file (``fabric-remote sync URL DIR`` fetches it)."""
    path = pathlib.Path(path)
    if mode() != "remote":
        return str(path)
    try:
        rel = path.relative_to(lakehouse_files())
    except (ValueError, ArtifactsError):
        return str(path)
    workspace = os.environ.get("FABRIC_TEST_WORKSPACE_NAME") or os.environ.get(
        "FABRIC_TEST_WORKSPACE_ID"
    )
    lakehouse = os.environ.get("FABRIC_TEST_LAKEHOUSE_NAME")
    files = "Files/" + rel.as_posix()
    if not (workspace and lakehouse):
        return files
    return "%s/%s/%s.Lakehouse/%s" % (ONELAKE_DFS, workspace, lakehouse, files)


def record(node, name, path):
    """Remembers that the tests below ``node`` keep their ``name`` artifacts at ``path``; the
    plugin adds it to their failing reports."""
    node.stash.setdefault(_stash_key, {})[name] = display(path)


def recorded(item):
    """``[(name, where)]`` recorded on ``item`` or any node above it."""
    found = {}
    for node in item.listchain():
        found.update(node.stash.get(_stash_key, {}))
    return sorted(found.items())
