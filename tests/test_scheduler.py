"""The scheduler never overlaps a job with itself and backs off while a source fails."""

from __future__ import annotations

import asyncio

from console.scheduler import Scheduler


async def test_runs_repeatedly_without_overlap():
    scheduler = Scheduler()
    running = 0
    most = 0
    runs = 0

    async def slow() -> None:
        nonlocal running, most, runs
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.05)
        running -= 1
        runs += 1

    scheduler.add("slow", 0.01, slow)  # interval below the floor of 0.25 s
    scheduler.jobs["slow"].interval = 0.01
    scheduler.start()
    await asyncio.sleep(0.4)
    await scheduler.stop()
    assert runs >= 3
    assert most == 1


async def test_failure_reports_and_backs_off():
    scheduler = Scheduler()
    errors: list[str] = []

    async def broken() -> None:
        raise RuntimeError("prometheus unreachable")

    job = scheduler.add("broken", 1.0, broken, errors.append)
    assert await scheduler.run_once("broken") is False
    assert await scheduler.run_once("broken") is False
    assert [str(e) for e in errors] == ["prometheus unreachable"] * 2
    assert job.failures == 2
    assert job.delay() == 4.0
    job.failures = 30
    assert job.delay() == job.max_backoff


async def test_poke_runs_now():
    scheduler = Scheduler()
    runs = 0

    async def once() -> None:
        nonlocal runs
        runs += 1

    scheduler.add("job", 60, once)
    scheduler.start()
    await asyncio.sleep(0.05)
    assert runs == 1
    scheduler.poke("job")
    await asyncio.sleep(0.05)
    assert runs == 2
    await scheduler.stop()


async def test_poke_during_a_run_is_kept():
    scheduler = Scheduler()
    runs = 0
    started = asyncio.Event()

    async def slow() -> None:
        nonlocal runs
        runs += 1
        started.set()
        await asyncio.sleep(0.1)

    scheduler.add("job", 60, slow)
    scheduler.start()
    await started.wait()
    scheduler.poke("job")  # while the first run is still going
    await asyncio.sleep(0.3)
    await scheduler.stop()
    assert runs == 2


async def test_a_run_asked_for_is_the_jobs_own_and_begins_after_the_asking():
    """An operator's refresh is run by the job's loop, never beside a run in progress, and the caller
    returns once a run that began after it asked has ended."""
    scheduler = Scheduler()
    running = most = 0
    runs: list[str] = []
    release = asyncio.Event()
    first_started = asyncio.Event()

    async def job() -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        runs.append("started")
        first_started.set()
        await release.wait()  # the first run is held until the refresh has been asked for
        running -= 1
        runs.append("ended")

    scheduler.add("signals", 3600.0, job)
    scheduler.start()
    await first_started.wait()
    asked = asyncio.create_task(scheduler.run_now("signals"))
    await asyncio.sleep(0)
    assert not asked.done()
    release.set()
    await asked
    assert runs == ["started", "ended", "started", "ended"]  # the asked run came after the first, whole
    assert most == 1
    await scheduler.stop()


async def test_a_run_asked_for_without_a_loop_runs_once_here():
    scheduler = Scheduler()
    runs = 0

    async def job() -> None:
        nonlocal runs
        runs += 1

    scheduler.add("pins", 3600.0, job)
    await scheduler.run_now("pins")
    await scheduler.run_now("nothing-of-that-name")
    assert runs == 1
