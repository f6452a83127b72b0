"""``python -m polyfeed``: the command line (:mod:`polyfeed.cli`)."""

import sys

from polyfeed.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
