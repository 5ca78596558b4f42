"""``python -m logto_rs``: the command line of :mod:`logto_rs.cli` (exit codes documented there)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
