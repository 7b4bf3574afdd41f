"""The Snakefile's exit hook cancels Snakemake's leftover re-evaluation timer, and only it."""

from __future__ import annotations

import inspect
import threading
from pathlib import Path

from snakemake.scheduling.job_scheduler import JobScheduler

from pstm.pipeline import SNAKEMAKE_REEVALUATION_TIMER, release_scheduler_timers

#: A class named like Snakemake's, so that its timer's lambda has the same qualified name.
_SCHEDULER_SOURCE = """
class JobScheduler:
    def _schedule_reevalutation(self, delay, event):
        timer = threading.Timer(delay, lambda: event.set())
        timer.start()
        return timer
"""


def test_cancels_the_scheduler_timer_and_leaves_others() -> None:
    ns: dict[str, object] = {"threading": threading}
    exec(_SCHEDULER_SOURCE, ns)
    event, other_event = threading.Event(), threading.Event()
    ours = ns["JobScheduler"]()._schedule_reevalutation(60.0, event)  # type: ignore[operator]
    other = threading.Timer(60.0, other_event.set)
    other.start()
    try:
        assert ours.function.__qualname__ == SNAKEMAKE_REEVALUATION_TIMER
        assert release_scheduler_timers() == 1
        ours.join(timeout=10.0)
        assert not ours.is_alive() and not event.is_set()  # cancelled, never fired
        assert other.is_alive()
    finally:
        other.cancel()
        ours.cancel()
    assert release_scheduler_timers() == 0


def test_snakemake_still_schedules_that_timer() -> None:
    """When this fails, Snakemake changed its re-evaluation: check whether the exit hook
    (pstm.pipeline.release_scheduler_timers) is still needed, and rename or drop it."""
    method = JobScheduler._schedule_reevalutation
    assert method.__qualname__ + ".<locals>.<lambda>" == SNAKEMAKE_REEVALUATION_TIMER
    assert "threading.Timer(" in inspect.getsource(method)


def test_the_snakefile_releases_the_timer_on_success_and_on_error() -> None:
    snakefile = (Path(__file__).parent.parent / "Snakefile").read_text()
    for hook in ("onsuccess", "onerror"):
        assert f"{hook}:\n    release_scheduler_timers()" in snakefile, hook
