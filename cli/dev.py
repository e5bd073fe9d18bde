"""`callbacks dev`: the whole local stack (embedded PostgreSQL, Temporal + UI, fakes, worker, API).

The one production-side door into `devstack/`, and imported only when the command runs: the dev stack needs
the `local` extra (embedded PostgreSQL, the Temporal CLI, the SMTP sink), which a production image lacks.
"""

from __future__ import annotations

import asyncio
import logging

from config import get_settings


def dev() -> None:
    """Run the whole local stack (PostgreSQL, Temporal + UI, worker, API) until Ctrl-C."""
    from devstack.stack import run_dev

    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run_dev(get_settings()))
