"""``python -m fabric_remote ARGS…`` runs the installed `fabric-remote` binary with ARGS."""

import os
import sys

from ._binary import BinaryNotFound, find_binary


def main():
    try:
        binary = find_binary()
    except BinaryNotFound as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    if os.name == "nt":
        import subprocess

        return subprocess.call([binary] + sys.argv[1:])
    os.execv(binary, [binary] + sys.argv[1:])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
