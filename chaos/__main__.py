"""python -m chaos [--list] [--only NAME ...] [--logs DIR]

Runs every scenario (or the named ones) against real processes on this machine and prints one line per
scenario and a last line `chaos: N/M scenarios hold, lost=L, duplicated=D`; exits 0 only when all hold.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from chaos.runner import run
from chaos.scenarios import SCENARIOS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chaos", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--list", action="store_true", help="name every scenario and its invariant")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this scenario (repeatable)")
    parser.add_argument("--logs", type=Path, help="keep the processes' logs in this folder")
    args = parser.parse_args(argv)
    if args.list:
        for scenario in SCENARIOS:
            print(f"{scenario.name}: {scenario.invariant}")
        return 0
    known = {scenario.name: scenario for scenario in SCENARIOS}
    unknown = [name for name in args.only or [] if name not in known]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)} (see --list)")
    chosen = [known[name] for name in args.only] if args.only else list(SCENARIOS)
    logging.basicConfig(level=logging.WARNING)
    return 0 if asyncio.run(run(chosen, args.logs)) else 1


if __name__ == "__main__":
    sys.exit(main())
