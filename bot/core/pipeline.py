"""The life of a platform event: accepted durably, run, and marked done only when its
actions are done. No platform imports here: each platform registers a *surface* that
knows how to fetch an event's pictures and how to carry out an action.

1. :meth:`EventPipeline.submit` writes the event (as JSON) to the store's inbox, leased to
   this worker, *before* the adapter tells the platform it arrived. If the store cannot
   take it, the adapter is told (:class:`StoreUnavailable`) and asks the platform to send
   it again (Slack: a 5xx, and Slack retries); a platform that never resends (Discord's
   gateway) passes ``hold=True`` and the event waits in memory until the store is back.
2. A task runs it: the surface downloads its pictures, the core decides, the surface acts,
   and the store marks it done. A fault on the way (the store, the platform, a network)
   leaves it pending: it is tried again in this process with growing delays, then handed
   back to the inbox, where the replayer (here or in any worker) takes it up again. An
   action the platform refuses for good (:class:`PermanentFailure`) is logged and skipped.
3. :meth:`EventPipeline.drain` (SIGTERM): no new events; what is running finishes within
   the grace period, or is handed back to the inbox, to be replayed at the next start.
   An event whose actions have begun is not cut in half: it finishes them and is marked
   done (up to ``finish_timeout`` more), so the next start does not post them again.
   Only events that never reached the store (held in memory) can be dropped, and they
   are counted: ``serve`` exits non-zero when any were.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Protocol

from bot.core.events import Action, AddReactions, Event, Reply, event_from_json, event_to_json
from bot.store.repository import StoreUnavailable

log = logging.getLogger("emojibot.pipeline")


class PermanentFailure(Exception):
    """The platform refused an action for good (asking again would be refused again)."""


class ShuttingDown(RuntimeError):
    """The bot is draining for shutdown and takes no new events."""


class Surface(Protocol):
    """What a platform adapter provides to the pipeline."""

    platform: str

    async def hydrate(self, event: Event) -> Event:
        """The event with its pictures downloaded (raise on a transient fault)."""
        ...

    async def act(self, action: Action, event: Event) -> None:
        """Carry out one action; raise PermanentFailure when the platform refuses it for
        good, anything else for a fault worth retrying."""
        ...


def _action_key(action: Action) -> tuple:
    if isinstance(action, AddReactions):
        return ("react", action.channel_id, action.message_id, tuple(e.char for e in action.emojis))
    assert isinstance(action, Reply)
    return ("reply", action.channel_id, action.thread_of, action.text)


class EventPipeline:
    def __init__(
        self,
        core,
        lease: float = 120.0,
        retry_delays: Sequence[float] = (0.5, 1, 2, 5, 10, 20, 30),
        max_attempts: int = 5,
        replay_interval: float = 1.0,
    ):
        """``retry_delays``: the waits between tries within this process (their sum stays
        well under ``lease``); ``max_attempts``: how many times an event is taken from the
        inbox (by this or another worker) before it is marked failed."""
        self.core = core
        self.store = core.store
        self.metrics = core.metrics
        self.lease = lease
        self.retry_delays = tuple(retry_delays)
        self.max_attempts = max_attempts
        self.replay_interval = replay_interval
        self.housekeeping_interval = 3600.0  # the retention purge, hourly
        self.surfaces: dict[str, Surface] = {}
        self.accepting = True
        self.dropped = 0
        self.handed_back = 0
        self._tasks: set[asyncio.Task] = set()
        self._running: set[tuple[str, str]] = set()  # (platform, event id) run by this process now
        self._acting: set[asyncio.Task] = set()  # tasks between their first action and being marked done
        self._held: list[tuple[Event, float]] = []
        self._replayer: asyncio.Task | None = None

    def register(self, surface: Surface) -> None:
        self.surfaces[surface.platform] = surface

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    @property
    def held(self) -> int:
        return len(self._held)

    async def start(self) -> None:
        """Start the replayer (events handed back by a fault, a shutdown or a dead worker)."""
        if self._replayer is None or self._replayer.done():
            self._replayer = asyncio.create_task(self._replay_forever(), name="emojibot-replayer")

    # -- accepting -------------------------------------------------------------------------
    async def submit(self, event: Event, hold: bool = False) -> bool:
        """Accept ``event`` durably and run it in the background. False: a duplicate.

        Raises :class:`StoreUnavailable` when the store cannot take it (unless ``hold``:
        then it waits in memory and is accepted when the store is back), and
        :class:`ShuttingDown` while draining when the store cannot take it either: an event
        that arrives during a drain is stored for the next start, not run (a Discord gateway
        stays connected until the drain ends, and never resends)."""
        if not self.accepting:
            return await self._keep_for_next_start(event, hold)
        t0 = time.monotonic()
        try:
            fresh = await self.store.accept_event(event.platform, event.event_id, event_to_json(event), self.lease)
        except StoreUnavailable:
            if not hold:
                self.metrics.event(event.platform, "refused")
                raise
            log.warning("store unavailable: event %s/%s held in memory", event.platform, event.event_id)
            self._held.append((event, t0))
            await self.start()
            return True
        if not fresh:
            self.metrics.event(event.platform, "duplicate")
            return False
        self.metrics.event(event.platform, "received")
        if not self.accepting:  # drain began while it was being stored: durable, so hand it back
            await self._hand_back(event, 0.0)
            self.handed_back += 1
            return True
        self._spawn(event, t0)
        return True

    async def _keep_for_next_start(self, event: Event, hold: bool) -> bool:
        """During a drain: store ``event`` due at once (another worker, or the next start,
        runs it) and count it handed back. A store that cannot take it then refuses it
        (``StoreUnavailable``, which Slack resends) or, for a platform that never resends
        (``hold``), drops it: counted, so that ``serve`` exits non-zero."""
        try:
            fresh = await self.store.accept_event(event.platform, event.event_id, event_to_json(event), 0.0)
        except StoreUnavailable:
            if not hold:
                self.metrics.event(event.platform, "refused")
                raise
            self.metrics.event(event.platform, "dropped")
            self.dropped += 1
            log.error("event %s/%s dropped: it arrived during shutdown with the store unavailable",
                      event.platform, event.event_id)  # fmt: skip
            raise ShuttingDown("the bot is shutting down and the store is unavailable") from None
        if not fresh:
            self.metrics.event(event.platform, "duplicate")
            return False
        self.metrics.event(event.platform, "received")
        self.handed_back += 1
        log.info("event %s/%s arrived during shutdown: stored for the next start", event.platform, event.event_id)
        return True

    def _spawn(self, event: Event, t0: float) -> None:
        key = (event.platform, event.event_id)
        if key in self._running:  # already running here (its lease ran out while it waited)
            return
        self._running.add(key)
        task = asyncio.create_task(self._run(event, t0), name=f"event-{event.platform}-{event.event_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _t: self._running.discard(key))

    # -- running ---------------------------------------------------------------------------
    async def _run(self, event: Event, t0: float) -> None:
        surface = self.surfaces.get(event.platform)
        if surface is None:
            log.error("no adapter for platform %r: event %s handed back", event.platform, event.event_id)
            await self._hand_back(event, self.lease)
            return
        done: set[tuple] = set()  # actions already carried out (a retry skips them)
        plan: list = []  # (the hydrated event, its actions), once decided: a retry carries out the same
        tries = 0
        heartbeat = asyncio.create_task(self._keep_lease(event))
        try:
            while True:
                try:
                    await self._attempt(surface, event, done, plan)
                    break
                except Exception as exc:  # a fault: the store, the platform or the network
                    if tries >= len(self.retry_delays) or not self.accepting:
                        log.warning(
                            "event %s/%s: %s; handed back to the inbox",
                            event.platform,
                            event.event_id,
                            _one_line(exc),
                        )
                        self.metrics.event(event.platform, "retried")
                        if not self.accepting:  # shutting down: the next start takes it at once
                            self.handed_back += 1
                            await self._hand_back(event, 0.0)
                        else:
                            await self._hand_back(event, self.retry_delays[-1] if self.retry_delays else 0.0)
                        return
                    delay = self.retry_delays[tries]
                    tries += 1
                    log.info("event %s/%s: %s; again in %.1fs", event.platform, event.event_id, _one_line(exc), delay)
                    self.metrics.event(event.platform, "retried")
                    await asyncio.sleep(delay)
        except asyncio.CancelledError:  # drain ran out of time: hand it back for the next start
            with contextlib.suppress(Exception):
                await asyncio.shield(self._hand_back(event, 0.0))
            raise
        finally:
            heartbeat.cancel()
        self.metrics.event(event.platform, "handled")
        self.metrics.latency.labels(event.platform).observe(time.monotonic() - t0)

    async def _attempt(self, surface: Surface, event: Event, done: set[tuple], plan: list) -> None:
        """Decide once (``plan`` keeps the decision), then carry out what ``done`` lacks. A
        retry must not decide again: a picture's answer is drawn from random samples, so
        its emojis and percentages differ each time, and the second set of reactions and
        the second reply would not count as done."""
        if not plan:
            ready = await surface.hydrate(event)
            plan.append((ready, await self.core.process(ready)))
        ready, actions = plan[0]
        task = asyncio.current_task()
        self._acting.add(task)  # from here drain lets it finish: a replay would act twice
        try:
            for action in actions:
                key = _action_key(action)
                if key in done:
                    continue
                try:
                    await surface.act(action, ready)
                except PermanentFailure as exc:
                    log.warning("%s refused %s for good: %s", event.platform, type(action).__name__, _one_line(exc))
                done.add(key)
            await self.store.complete_event(event.platform, event.event_id)
        finally:
            self._acting.discard(task)

    async def _keep_lease(self, event: Event) -> None:
        """Renew the event's lease while it runs (a slow platform or file host must not let
        another worker, or this one's replayer, start it a second time)."""
        while True:
            await asyncio.sleep(self.lease / 3)
            with contextlib.suppress(StoreUnavailable):
                await self.store.extend_lease(event.platform, event.event_id, self.lease)

    async def _hand_back(self, event: Event, retry_in: float) -> None:
        try:
            await self.store.release_event(event.platform, event.event_id, retry_in)
        except StoreUnavailable:
            pass  # its lease runs out on its own; the replayer takes it then

    # -- replaying -------------------------------------------------------------------------
    async def _accept_held(self, lease: float, on_fresh=None) -> None:
        """Store the held events in order, each leaving memory only once the store has it:
        until then ``held`` counts it, and a call cancelled (a drain stopping the replayer)
        or stopped by :class:`StoreUnavailable` loses none. ``on_fresh(event, t0)`` for each
        one the store had not seen."""
        for item in list(self._held):
            event, t0 = item
            fresh = await self.store.accept_event(event.platform, event.event_id, event_to_json(event), lease)
            self._held = [h for h in self._held if h is not item]
            if fresh and on_fresh is not None:
                on_fresh(event, t0)

    async def replay_once(self) -> int:
        """Accept held events and start the inbox's due ones; how many were started."""
        started = 0

        def start(event: Event, t0: float) -> None:
            nonlocal started
            self.metrics.event(event.platform, "received")
            self._spawn(event, t0)
            started += 1

        try:
            await self._accept_held(self.lease, start)
        except StoreUnavailable:
            return started
        if not self.surfaces or not self.accepting:
            return started
        for due in await self.store.take_due_events(list(self.surfaces), lease=self.lease):
            if due.attempts > self.max_attempts:
                log.error("event %s/%s failed %d times: given up", due.platform, due.event_id, due.attempts - 1)
                self.metrics.event(due.platform, "failed")
                await self.store.complete_event(due.platform, due.event_id, failed=True)
                continue
            try:
                event = event_from_json(due.payload)
            except (ValueError, KeyError, TypeError) as exc:
                log.error("event %s/%s cannot be read back (%s): failed", due.platform, due.event_id, exc)
                self.metrics.event(due.platform, "failed")
                await self.store.complete_event(due.platform, due.event_id, failed=True)
                continue
            log.info("replaying event %s/%s (attempt %d)", due.platform, due.event_id, due.attempts)
            self._spawn(event, time.monotonic())
            started += 1
        return started

    async def _replay_forever(self) -> None:
        next_housekeeping = 0.0  # at start, then every housekeeping_interval
        next_model_check = 0.0  # the current model version, every core.models.poll_s
        while self.accepting:
            try:
                await self.replay_once()
                if time.monotonic() >= next_model_check:
                    next_model_check = time.monotonic() + self.core.models.poll_s
                    await self.core.models.tick()
                if time.monotonic() >= next_housekeeping:
                    gone = await self.core.housekeeping()
                    next_housekeeping = time.monotonic() + self.housekeeping_interval
                    if any(gone.values()):
                        log.info("retention: deleted %s", ", ".join(f"{v} {k}" for k, v in gone.items()))
            except StoreUnavailable:
                pass
            except Exception:
                log.exception("replaying pending events failed")
            await asyncio.sleep(self.replay_interval)

    # -- shutdown --------------------------------------------------------------------------
    async def drain(self, timeout: float = 20.0, finish_timeout: float = 5.0) -> int:
        """Stop taking events; give running ones ``timeout`` seconds, hand back the rest.
        Events already carrying out their actions get up to ``finish_timeout`` seconds more
        to finish them and be marked done. Returns how many events were dropped (held in
        memory, never stored)."""
        self.accepting = False
        if self._replayer is not None:
            self._replayer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replayer
        with contextlib.suppress(StoreUnavailable):  # one last chance to make the held ones durable
            await self._accept_held(0.0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while running := [t for t in self._tasks if not t.done()]:  # including ones started meanwhile
            left = deadline - loop.time()
            if left <= 0:
                # Not yet acting: cut now, the next start runs them whole. Acting: let them
                # finish their actions and be marked done, then cut whatever still hangs.
                waiting = [t for t in running if t not in self._acting]
                for t in waiting:
                    t.cancel()
                await asyncio.gather(*waiting, return_exceptions=True)
                if acting := [t for t in running if not t.done()]:
                    await asyncio.wait(acting, timeout=finish_timeout)
                    for t in (cut := [t for t in acting if not t.done()]):
                        t.cancel()
                    await asyncio.gather(*cut, return_exceptions=True)
                    waiting += cut
                self.handed_back += len(waiting)
                if waiting:
                    log.warning("%d events still running at shutdown: handed back for the next start", len(waiting))
                break
            await asyncio.wait(running, timeout=left)
        dropped = len(self._held)
        for event, _ in self._held:
            self.metrics.event(event.platform, "dropped")
            log.error("event %s/%s dropped: the store was unavailable until shutdown", event.platform, event.event_id)
        self._held = []
        self.dropped += dropped
        return dropped


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


__all__ = ["EventPipeline", "PermanentFailure", "ShuttingDown", "Surface"]
