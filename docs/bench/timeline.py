"""Timeline of a finished workflow run from its job logs (docs/benchmarks.md, end to end).

Every job logs its process's age when it ends ("process X s since its start",
pstm.stages.run_logged); with the log's timestamp that gives each job's start and end.
Prints one line per job: start and end in seconds after the first job's start, and the
process's seconds, in start order.

Usage: python docs/bench/timeline.py WORKDIR   (the directory run_e2e.sh prints)
"""

from __future__ import annotations

import datetime
import re
import sys
from pathlib import Path

LINE = re.compile(r"(\S+ \S+),(\d+) INFO process ([\d.]+) s since its start")


def job_spans(work: Path) -> list[tuple[float, float, str]]:
    """(start, end, log name) of every job whose log records its process age."""
    spans = []
    for log in sorted((work / "logs").glob("*/*.log")):
        for line in log.read_text().splitlines():
            m = LINE.match(line)
            if m:
                stamp = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")
                end = stamp.timestamp() + int(m.group(2)) / 1000
                spans.append((end - float(m.group(3)), end, str(log.relative_to(work / "logs"))))
    return sorted(spans)


def main(work: Path) -> None:
    spans = job_spans(work)
    if not spans:
        raise SystemExit(f"no job log with a process age under {work / 'logs'}")
    t0 = spans[0][0]
    print(f"{'start':>7} {'end':>7} {'s':>6}  job (seconds after the first job's start)")
    for start, end, name in spans:
        print(f"{start - t0:7.2f} {end - t0:7.2f} {end - start:6.2f}  {name}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
