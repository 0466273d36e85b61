"""The plugin's pure pieces: which arguments reach the remote pytest, how paths are mapped."""

import pytest

from fabric_remote._replay import PathMap, warning_category
from fabric_remote.plugin import forwarded_args


@pytest.mark.parametrize(
    "given, sent",
    [
        (["--remote", "-v"], ["-v"]),
        (["-x", "--remote", "--shards", "3", "-k", "a or b"], ["-x", "-k", "a or b"]),
        (["--shards=2", "--remote", "--de", "--label", "two words"], ["--de", "--label", "two words"]),
        (["tests/a.py::T::t[x-1]", "--remote", "-o", "junit_family=xunit1", "-p", "no:cacheprovider"],
         ["tests/a.py::T::t[x-1]", "-o", "junit_family=xunit1", "-p", "no:cacheprovider"]),
        # Only exact options are ours; a value that happens to look like one is the user's.
        (["--remote", "-k", "--remote-ish"], ["-k", "--remote-ish"]),
    ],
)
def test_forwarded_args_are_the_users_minus_the_plugins(given, sent):
    assert forwarded_args(given) == sent


def test_remote_paths_map_onto_the_rootdir_once_learnt(tmp_path):
    root = tmp_path / "proj"
    (root / "tests" / "sub").mkdir(parents=True)
    files = [root / "tests" / "test_a.py", root / "tests" / "sub" / "test_a.py"]
    paths = PathMap(root, files)
    remote = "/tmp/fabric-remote-x1/project"
    assert paths.local(remote + "/tests/sub/test_a.py") == str(root / "tests" / "sub" / "test_a.py")
    assert paths.remote_root == remote
    assert paths.local(remote + "/tests/helpers.py") == str(root / "tests" / "helpers.py")
    assert paths.local("/usr/lib/python3/site-packages/x.py") == "/usr/lib/python3/site-packages/x.py"
    assert paths.local("tests/test_a.py") == "tests/test_a.py"
    assert paths.text("ImportError while importing test module '%s/tests/test_b.py'." % remote) == (
        "ImportError while importing test module '%s'." % (root / "tests" / "test_b.py")
    )


def test_warning_categories_resolve_or_stand_in():
    assert warning_category("DeprecationWarning") is DeprecationWarning
    assert warning_category("PytestUnknownMarkWarning") is pytest.PytestUnknownMarkWarning
    custom = warning_category("MyProjectWarning")
    assert issubclass(custom, UserWarning) and custom.__name__ == "MyProjectWarning"
    assert warning_category("MyProjectWarning") is custom
    assert warning_category(None) is UserWarning
