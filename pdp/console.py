"""A command's standard output, which the reader may close early (`pdp ... | head`).

Every command line entry point (`pdp`, `python -m pdp`, `python -m pdp.config`) runs its
body through `run_command`: when the reader of stdout has gone, the command ends quietly
with exit code 0 instead of a BrokenPipeError traceback, there or at interpreter exit.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

EXIT_READER_GONE = 0  # like `yes | head`: the reader had what it wanted, nothing failed


def run_command(body: Callable[[], int]) -> int:
    """Run `body` and flush stdout; a closed stdout ends it quietly with EXIT_READER_GONE."""
    try:
        try:
            return body()
        finally:
            sys.stdout.flush()  # buffered output meets the closed pipe here, not at exit
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at /dev/null so that flush is silent.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_READER_GONE
