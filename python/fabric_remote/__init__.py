"""fabric-remote for Python: the `fabric-remote` binary, `pytest --remote`, and mounted mode.

The wheel (distribution `fabric-remote-cli`) installs

- the `fabric-remote` command into the environment's scripts folder (find it with
  :func:`find_binary`; ``python -m fabric_remote`` runs it too);
- the pytest plugin :mod:`fabric_remote.plugin` (registered through the ``pytest11`` entry
  point): ``pytest --remote`` runs the selected tests inside a Fabric Spark job and reports
  them here as if they had run locally;
- :mod:`fabric_remote.artifacts` and :mod:`fabric_remote.dbt`: where a dbt project's test
  artifacts go when the tests run mounted or remotely.

See docs/pytest-plugin.md in the repository.
"""

from ._binary import BinaryNotFound, find_binary

__all__ = ["BinaryNotFound", "find_binary"]
