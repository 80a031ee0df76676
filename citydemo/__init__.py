"""The city-sized demo (`flask demo seed --scale ...`): bulk data across every domain for
benchmarks and capacity checks. It writes the rows the services would write, in bulk, and so
knows every domain's tables; nothing imports it but the composition root (`moralcredit`).

`init_app(app)` gives `community`'s `flask demo seed` its `--scale` seeder; wire it after every
domain whose tables it fills.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from citydemo import seed
    from community.cli import set_scale_seeder

    set_scale_seeder(app, seed.seed, tuple(seed.SCALES))
