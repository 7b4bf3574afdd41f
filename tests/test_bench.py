"""``pstm bench``'s timing: the variants of one command are timed round-robin."""

from __future__ import annotations

import time

from pstm.bench import _time_round_robin


def test_variants_are_timed_round_robin() -> None:
    """ROUND_ROBIN: after one warm-up call each, every round calls each variant once in
    turn, so a slow phase of the machine (seconds long) slows all variants alike; each
    variant's result, best, median and CPU time are its own."""
    calls: list[str] = []

    def variant(name: str, result: int, seconds: float):  # type: ignore[no-untyped-def]
        def call() -> int:
            calls.append(name)
            time.sleep(seconds)
            return result

        return call

    timed = _time_round_robin([variant("a", 1, 0.0), variant("b", 2, 0.02)], repeat=3)
    assert calls == ["a", "b"] * 4  # the warm-up round, then three timed rounds
    assert [t[0] for t in timed] == [1, 2]
    (_, best_a, median_a, _), (_, best_b, median_b, cpu_b) = timed
    assert 0.0 <= best_a <= median_a < 0.02 <= best_b <= median_b  # each its own times
    assert cpu_b < best_b  # sleeping takes no CPU time: the process CPU time, per call
