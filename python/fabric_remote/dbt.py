"""dbt-core's ``project_root``, ``profiles_root`` and ``logs_dir`` fixtures, mounted-mode aware.

Import them into the project's ``conftest.py`` (after dbt's own fixtures are loaded) to
override dbt-core's::

    pytest_plugins = ["dbt.tests.fixtures.project"]
    from fabric_remote.dbt import logs_dir, profiles_root, project_root  # noqa: F401

With ``FABRIC_TEST_SPARK_EXEC_MODE`` empty they behave exactly as dbt-core's (pytest's
temporary folders; ``<rootdir>/logs/<prefix>``). With ``mounted`` or ``remote`` each test
class gets ``<base>/<prefix>/project``, ``…/profile`` and ``…/logs`` (see
:mod:`fabric_remote.artifacts` for ``<base>``), created on first use, and a failing test's
report carries those locations so the local terminal shows them.

Return types are dbt-core's: ``py.path.local`` for the two roots (its ``mkdir``/``join`` are
used by dbt's helpers), ``str`` for ``logs_dir``, which also sets ``DBT_LOG_PATH`` while the
class runs.
"""

import os

import pytest

from . import artifacts

try:
    from _pytest.compat import legacy_path
except ImportError:  # pragma: no cover - pytest without the helper
    import py

    legacy_path = py.path.local


def _redirected(request, prefix, name, key):
    try:
        path = artifacts.artifact_dir(prefix, name)
    except artifacts.ArtifactsError as e:
        pytest.fail(str(e), pytrace=False)
    if path is not None:
        artifacts.record(request.node, key, path)
    return path


@pytest.fixture(scope="class")
def project_root(request, tmpdir_factory, prefix):
    path = _redirected(request, prefix, "project", "project_root")
    root = legacy_path(path) if path is not None else tmpdir_factory.mktemp("project")
    print(f"\n=== Test project_root: {root}")
    return root


@pytest.fixture(scope="class")
def profiles_root(request, tmpdir_factory, prefix):
    path = _redirected(request, prefix, "profile", "profiles_root")
    return legacy_path(path) if path is not None else tmpdir_factory.mktemp("profile")


@pytest.fixture(scope="class")
def logs_dir(request, prefix):
    path = _redirected(request, prefix, "logs", "logs_dir")
    if path is None:
        path = os.path.join(request.config.rootdir, "logs", prefix)
    path = str(path)
    os.environ["DBT_LOG_PATH"] = path
    yield path
    os.environ.pop("DBT_LOG_PATH", None)
