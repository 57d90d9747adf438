"""``audit worker`` that SIGKILLs its process group before its n-th write to a table:
``python armed_worker.py TABLE N worker ARGS...``, or that stops there until released:
``python armed_worker.py TABLE N --pause DIR worker ARGS...`` (see :mod:`crashpoint`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/: crashpoint

from crashpoint import arm, pause

from audit.cli import main

if __name__ == "__main__":
    table, n, rest = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    if rest[0] == "--pause":
        pause(table, n, Path(rest[1]))
        rest = rest[2:]
    else:
        arm(table, n)
    sys.argv = ["audit", *rest]
    main()
