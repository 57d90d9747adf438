"""``audit worker`` that SIGKILLs its process group before its n-th write to a table:
``python armed_worker.py TABLE N worker ARGS...`` (see :mod:`crashpoint`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/: crashpoint

from crashpoint import arm

from audit.cli import main

if __name__ == "__main__":
    table, n = sys.argv[1], int(sys.argv[2])
    arm(table, n)
    sys.argv = ["audit", *sys.argv[3:]]
    main()
