"""Runs every source on its own interval: never overlapping, the next run scheduled when the last ends,
with exponential backoff while a source keeps failing. Each source's loop starts on its own, so a slow
one holds up no other; a run past its deadline is cut off and counts as a failure."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class Job:
    name: str
    interval: float
    run: Callable[[], Awaitable[None]]
    on_error: Callable[[BaseException], None] | None = None
    deadline: float | None = None  # seconds one run may take; None: as long as it takes
    label: str = ""  # what the job reads, in words, for "waiting for ..." and "STALE" marks
    max_backoff: float = 300.0
    failures: int = 0
    last_started: float | None = None
    last_duration: float | None = None
    last_done: float | None = None  # when a run last ended, well or not (scheduler clock)
    running: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    done_once: asyncio.Event = field(default_factory=asyncio.Event)
    requested: list[asyncio.Future[None]] = field(default_factory=list)  # run_now callers of the next run
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one run at a time, whoever starts it

    def delay(self) -> float:
        """Seconds to wait before the next run."""
        if self.failures:
            return min(self.max_backoff, self.interval * 2 ** min(self.failures, 10))
        return max(0.0, self.interval - (self.last_duration or 0.0))


class Scheduler:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.jobs: dict[str, Job] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._clock = clock

    def add(
        self,
        name: str,
        interval: float,
        run: Callable[[], Awaitable[None]],
        on_error: Callable[[BaseException], None] | None = None,
        *,
        deadline: float | None = None,
        label: str = "",
    ) -> Job:
        job = Job(
            name=name,
            interval=max(0.25, interval),
            run=run,
            on_error=on_error,
            deadline=deadline,
            label=label or name,
        )
        self.jobs[name] = job
        return job

    def now(self) -> float:
        return self._clock()

    async def run_once(self, name: str) -> bool:
        """Run one job now, after its run in progress if there is one; True when it succeeded."""
        job = self.jobs[name]
        async with job.lock:
            return await self._run(job)

    async def _run(self, job: Job) -> bool:
        name = job.name
        job.last_started = self._clock()
        job.running = True
        try:
            try:
                async with asyncio.timeout(job.deadline):
                    await job.run()
            except TimeoutError:
                if job.deadline is None:
                    raise
                raise TimeoutError(f"{job.label}: no complete answer within {job.deadline:g}s") from None
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failing source is a state, never a crash
            job.failures += 1
            log.debug("job %s failed: %s", name, exc)
            if job.on_error is not None:
                job.on_error(exc)
            return False
        else:
            job.failures = 0
            return True
        finally:
            job.running = False
            job.last_done = self._clock()
            job.last_duration = job.last_done - job.last_started
            job.done_once.set()

    async def run_all_once(self) -> None:
        """Every job once, together; each bounded by its own deadline."""
        await asyncio.gather(*(self.run_once(name) for name in self.jobs))

    async def first_runs(self, timeout: float) -> None:
        """Wait until every started job has run once, or `timeout` seconds, whichever comes first."""
        waits = [asyncio.ensure_future(job.done_once.wait()) for job in self.jobs.values()]
        if not waits:
            return
        _, pending = await asyncio.wait(waits, timeout=timeout)
        for wait in pending:
            wait.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def start(self) -> None:
        for name in self.jobs:
            if name not in self._tasks:
                self._tasks[name] = asyncio.create_task(self._loop(self.jobs[name]), name=f"job:{name}")

    def poke(self, name: str) -> None:
        """Run a job again now instead of waiting for its interval."""
        job = self.jobs.get(name)
        if job is not None:
            job.failures = 0
            job.wake.set()

    async def run_now(self, name: str) -> None:
        """Run a job now for a person who asked, and return once a run that began after the asking has
        ended. A job whose loop runs is run by its loop (never beside it); one without a loop, here."""
        job = self.jobs.get(name)
        if job is None:
            return
        if name not in self._tasks:
            await self.run_once(name)
            return
        done = asyncio.get_running_loop().create_future()
        job.requested.append(done)
        self.poke(name)
        await done

    async def _loop(self, job: Job) -> None:
        while True:
            job.wake.clear()  # before the run, so a poke that arrives during it is kept
            asked, job.requested = job.requested, []
            try:
                await self.run_once(job.name)
            finally:
                for done in asked:
                    if not done.done():
                        done.set_result(None)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(job.wake.wait(), timeout=job.delay())

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for job in self.jobs.values():  # nobody waits for a run that will not come
            for done in job.requested:
                done.cancel()
            job.requested.clear()
