"""Routes for whoever operates the bot, served whether or not the playground is on.

- ``GET /healthz``: liveness. 200 while the process serves requests and its engines run;
  503 once an engine was closed or crashed (restart it).
- ``GET /readyz``: readiness. 200 only when the store answers a write within 2 s, the
  models are loaded and the bot is not draining for shutdown; else 503 with the reasons.
- ``GET /metrics``: the Prometheus text format (``bot.core.metrics``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.core.bot import BotCore
from bot.core.metrics import CONTENT_TYPE
from bot.store.repository import StoreUnavailable

OPS_CORE_KEY = web.AppKey("ops_core", BotCore)
_PROBE_TTL = 1.0  # a scrape storm costs at most one probe write (and one count) a second


def _engine_alive(engine) -> bool:
    """False once the engine was closed (shutdown, or a fault that stopped it)."""
    return engine is None or not getattr(engine, "closed", False)


async def healthz(request: web.Request) -> web.Response:
    core = request.app[OPS_CORE_KEY]
    alive = _engine_alive(core.text) and _engine_alive(core.pictures)
    body = {
        "status": "ok" if alive else "engine stopped",
        "model_version": core.model_version,
        "pictures": core.pictures is not None,
    }
    return web.json_response(body, status=200 if alive else 503)


async def readyz(request: web.Request) -> web.Response:
    core = request.app[OPS_CORE_KEY]
    problems = []
    store_state = await _store_state(request.app, core)
    if store_state != "writable":
        problems.append(f"store: {store_state}")
    if not (_engine_alive(core.text) and _engine_alive(core.pictures)):
        problems.append("models: an engine is stopped")
    if not core.pipeline.accepting:
        problems.append("draining for shutdown")
    body = {
        "status": "ready" if not problems else "not ready",
        "store": store_state,
        "model_version": core.model_version,
        "pending_events": core.pipeline.in_flight,
        "held_events": core.pipeline.held,
        "problems": problems,
    }
    return web.json_response(body, status=200 if not problems else 503)


_SHARED_KEY = web.AppKey("ops_shared", dict)


async def _shared(app: web.Application, name: str, fetch: Callable[[], Awaitable[Any]]) -> Any:
    """What ``fetch()`` answers, asked of the store at most once a second: a request that
    arrives while it is under way waits for that one, and one within the second after gets
    its answer (these routes need no login: each asking on its own would be a query, or a
    write, per request). A caller that goes away does not cancel it; a failure is every
    waiter's and is not kept."""
    entry = app[_SHARED_KEY].setdefault(name, {})
    if time.monotonic() - entry.get("at", -1e9) < _PROBE_TTL:
        return entry["value"]
    task = entry.get("task")
    if task is None or task.done():

        async def ask() -> Any:
            value = await fetch()
            entry.update(at=time.monotonic(), value=value)
            return value

        task = entry["task"] = asyncio.create_task(ask())
    return await asyncio.shield(task)


async def _store_state(app: web.Application, core: BotCore) -> str:
    """The store's state: "writable", or why not (a write probe, shared)."""

    async def probe() -> str:
        try:
            await asyncio.wait_for(core.store.check_writable(), 2.0)
            return "writable"
        except StoreUnavailable as exc:
            return str(exc)
        except TimeoutError:
            return "the database did not answer within 2 s"

    return await _shared(app, "store", probe)


async def metrics(request: web.Request) -> web.Response:
    core = request.app[OPS_CORE_KEY]
    try:
        pending = await _shared(request.app, "pending", lambda: asyncio.wait_for(core.store.pending_events(), 2.0))
        core.metrics.pending.set(pending)
    except (StoreUnavailable, TimeoutError):
        pass  # the last value stays; /readyz says why
    resp = web.Response(body=core.metrics.render())
    resp.headers["Content-Type"] = CONTENT_TYPE
    return resp


def add_ops_routes(app: web.Application, core: BotCore) -> None:
    app[OPS_CORE_KEY] = core
    app[_SHARED_KEY] = {}
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


__all__ = ["add_ops_routes"]
