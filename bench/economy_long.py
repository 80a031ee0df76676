"""The stateful test of the points economy (tests/test_points_economy.py), run long: many more
random sequences of scans, corrections, make-ups, reviews, redemptions, voids, deeds and
adjustments by insiders, with shrinking on, on SQLite and PostgreSQL. Prints what it ran and how
long it took; a failure prints the (shrunk) sequence of steps that broke an invariant.

Usage: `.venv/bin/python bench/economy_long.py [examples] [steps]` (defaults 300 and 60).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    examples = sys.argv[1] if len(sys.argv) > 1 else "300"
    steps = sys.argv[2] if len(sys.argv) > 2 else "60"
    env = {
        **os.environ,
        "ECONOMY_EXAMPLES": examples,
        "ECONOMY_STEPS": steps,
        "ECONOMY_SHRINK": "1",
        "PYTEST_XDIST_WORKER": "_economy",
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_points_economy.py", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
    )
    took = time.monotonic() - started
    print(f"economy: {examples} examples × up to {steps} steps per database, {took:.0f} s, exit {result.returncode}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
