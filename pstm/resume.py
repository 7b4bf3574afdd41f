"""Make a killed run resumable with the same command (``make run``).

After a SIGKILL, Snakemake leaves ``.snakemake/locks/*`` behind and refuses to start, and
the jobs it had started keep running to completion as orphans. Before each run,
:func:`prepare_resume` looks at every process of this machine working in this directory:

- a Snakemake process (however started: ``snakemake``, ``python -m snakemake``, under
  ``time`` or ``nice``...) means another run is live: nothing is touched, exit non-zero;
- an orphaned job of a killed run (``python .snakemake/scripts/...``) is waited for, so
  the new run never starts the same tile a second time while the old job still writes it;
- SLURM jobs (``squeue``) whose working directory is this one count as live jobs too:
  they are waited for. SLURM is asked only where a run of this directory went through
  it: the Snakefile's ``onstart`` leaves :data:`REMOTE_EXECUTOR_MARKER` when a run uses a
  cluster executor (:func:`record_executor`). A machine with ``squeue`` but no working
  SLURM (e.g. after a test) then runs local workflows undisturbed.

Only then are the locks stale, and they are removed. Processes are recognised by what
they run and where, never by a remembered PID, so PID reuse cannot fool the check.
Incomplete outputs are handled by ``rerun-incomplete: true`` in the local profile (every
output is renamed into place, so a killed job leaves nothing that looks complete).
Limits: processes of other users and other machines are invisible here, except SLURM
jobs; run one workflow per directory.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

#: How long ``make run`` waits by default for orphaned jobs of a killed run to finish.
ORPHAN_WAIT_S = 6 * 3600.0
#: Poll interval while waiting for orphaned jobs.
ORPHAN_POLL_S = 0.5
#: Seconds allowed for ``squeue`` to answer.
SQUEUE_TIMEOUT_S = 30.0

#: A Snakemake process: ``snakemake`` as a program or module name, not ``.snakemake/``.
_SNAKEMAKE_RE = re.compile(r"(?:^|[\s/])snakemake(?:$|[\s.:])")
#: A job started by Snakemake: a ``script:`` copied under ``.snakemake/scripts``.
_JOB_RE = re.compile(r"(?:^|[\s/])\.snakemake/scripts/")


#: Left in ``.snakemake`` by a run that used a cluster executor (it holds the executor's
#: name): only then does the resume ask SLURM about this directory's jobs.
REMOTE_EXECUTOR_MARKER = Path(".snakemake") / "pstm-remote-executor"


class SlurmCheck(StrEnum):
    """Whether to ask SLURM for jobs of a killed run (``--slurm``)."""

    #: where a run of this directory used a cluster executor (the marker) and ``squeue`` is
    #: installed; a failing squeue then stops the resume
    AUTO = "auto"
    OFF = "off"  # never ask


#: Snakemake's executors that run jobs on this machine (or none): no SLURM job to look for.
LOCAL_EXECUTORS = ("local", "dryrun", "touch")


def record_executor(executor: str | None, workdir: Path | None = None) -> bool:
    """Leave :data:`REMOTE_EXECUTOR_MARKER` when a run uses a cluster executor (any but
    LOCAL_EXECUTORS); called by the Snakefile's ``onstart`` with the executor plugin's
    name. A local run removes it: an earlier cluster run's jobs were waited for before it
    could start (:func:`prepare_resume`, or Snakemake's own lock), and ``pstm status``
    would otherwise count a killed local run's locks as a live cluster run's. Returns
    whether it wrote the marker."""
    marker = (workdir or Path.cwd()) / REMOTE_EXECUTOR_MARKER
    if executor is None or executor in LOCAL_EXECUTORS:
        if executor == "local":  # jobs run here (not a --touch run's bookkeeping)
            marker.unlink(missing_ok=True)
        return False
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{executor}\n")
    return True


class ProcessKind(StrEnum):
    SNAKEMAKE = "snakemake"  # a live run: never touch its lock
    JOB = "job"  # a job of a (possibly killed) run: wait for it
    SLURM_JOB = "slurm job"


@dataclass(frozen=True)
class WorkflowProcess:
    pid: int
    kind: ProcessKind
    command: str

    def describe(self) -> str:
        return f"{self.kind.value} {self.pid}: {self.command[:160]}"


def _ancestors() -> set[int]:
    """This process and its parents (``make`` -> shell -> us) are never 'another run'."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def classify(argv: list[str]) -> ProcessKind | None:
    """What a command line is: a Snakemake run, one of its jobs, or neither."""
    line = " ".join(argv)
    if _JOB_RE.search(line) or (_SNAKEMAKE_RE.search(line) and "--target-jobs" in argv):
        return ProcessKind.JOB  # a script job, or a job-runner Snakemake (cluster jobs)
    if _SNAKEMAKE_RE.search(line):
        return ProcessKind.SNAKEMAKE
    return None


def local_processes(workdir: Path) -> list[WorkflowProcess]:
    """Snakemake runs and their jobs on this machine whose working directory is ``workdir``
    (Linux ``/proc``; processes we may not inspect are skipped)."""
    target = workdir.resolve()
    skip = _ancestors()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            pid = int(proc.name)
            if pid in skip:
                continue
            argv = [
                a.decode(errors="replace")
                for a in (proc / "cmdline").read_bytes().split(b"\0")
                if a
            ]
            kind = classify(argv)
            if kind is None or Path(os.readlink(proc / "cwd")).resolve() != target:
                continue
            found.append(WorkflowProcess(pid, kind, " ".join(argv)))
        except (OSError, ValueError):
            continue  # ended meanwhile, a zombie, or not ours to inspect
    return sorted(found, key=lambda p: p.pid)


def slurm_jobs(workdir: Path, check: SlurmCheck = SlurmCheck.AUTO) -> list[WorkflowProcess]:
    """This user's SLURM jobs whose working directory is ``workdir`` ([] without SLURM)."""
    squeue = shutil.which("squeue")
    if check is SlurmCheck.OFF or squeue is None or not (workdir / REMOTE_EXECUTOR_MARKER).exists():
        return []
    try:
        out = subprocess.run(
            [squeue, "--me", "--noheader", "--format=%i|%Z|%j"],
            capture_output=True,
            text=True,
            timeout=SQUEUE_TIMEOUT_S,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        said = getattr(exc, "stderr", None)  # squeue's own words, where it answered
        detail = said.strip().splitlines()[-1] if isinstance(said, str) and said.strip() else exc
        raise SystemExit(
            f"pstm: a run of {workdir} went through SLURM ({REMOTE_EXECUTOR_MARKER}), but "
            f"squeue cannot say whether its jobs are still running: "
            f"{str(detail).rstrip('.')}. Check SLURM and run the same command again; if none "
            "of its jobs can still be queued, resume without asking: --slurm off "
            "(make run RESUME_ARGS='--slurm off')"
        ) from None
    target = workdir.resolve()
    own = os.environ.get("SLURM_JOB_ID")  # a head run inside a job (sbatch, salloc) there
    jobs = []
    for line in out.splitlines():
        job_id, _, rest = line.partition("|")
        job_dir, _, name = rest.partition("|")
        job = job_id.split("_")[0]  # an array task's job
        if job != own and job.isdigit() and job_dir and Path(job_dir).resolve() == target:
            jobs.append(WorkflowProcess(int(job), ProcessKind.SLURM_JOB, name))
    return jobs


def workflow_processes(workdir: Path, slurm: SlurmCheck) -> list[WorkflowProcess]:
    """This directory's processes; SLURM is not asked when a live Snakemake run is found
    here (that alone stops the resume, and is the message to show)."""
    local = local_processes(workdir)
    if any(p.kind is ProcessKind.SNAKEMAKE for p in local):
        return local
    return local + slurm_jobs(workdir, slurm)


def prepare_resume(
    workdir: Path,
    wait_s: float = ORPHAN_WAIT_S,
    poll_s: float = ORPHAN_POLL_S,
    slurm: SlurmCheck = SlurmCheck.AUTO,
) -> str:
    """Refuse if a run is live, wait for orphaned jobs, then remove stale locks.
    Returns what was done; raises ``SystemExit`` with a clear message when it cannot go on.
    Without a lock there is nothing to resume (a live or killed Snakemake run always holds
    one, and Snakemake itself refuses a second run while a live one holds it), so no
    process or SLURM look-up is made."""
    locks = workdir / ".snakemake" / "locks"
    if not (locks.is_dir() and any(locks.iterdir())):
        return "no lock"
    deadline = time.monotonic() + wait_s
    announced = False
    while True:
        procs = workflow_processes(workdir, slurm)
        runs = [p for p in procs if p.kind is ProcessKind.SNAKEMAKE]
        if runs:
            raise SystemExit(
                f"pstm: Snakemake is already running in {workdir} "
                f"({'; '.join(p.describe() for p in runs)}); wait for it to finish (or stop "
                "it with Ctrl-C / kill PID) before starting another run in this directory"
            )
        if not procs:
            break
        if time.monotonic() >= deadline:
            raise SystemExit(
                f"pstm: jobs of a killed run are still running in {workdir} after waiting "
                f"{wait_s:.0f} s ({'; '.join(p.describe() for p in procs)}); let them finish "
                "or stop them (kill PID / scancel ID), then run the same command again"
            )
        if not announced:
            print(
                "pstm: waiting for jobs of a killed run to finish, so no tile runs twice: "
                + "; ".join(p.describe() for p in procs),
                file=sys.stderr,
            )
            announced = True
        time.sleep(poll_s)
    locks = workdir / ".snakemake" / "locks"
    held = sorted(locks.glob("*")) if locks.is_dir() else []
    if not held:
        return "no lock"
    for lock in held:
        lock.unlink(missing_ok=True)
    return f"removed {len(held)} stale lock file(s) left by a killed run"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pstm.resume", description="make a killed run resumable"
    )
    parser.add_argument(
        "--wait-s",
        type=float,
        default=ORPHAN_WAIT_S,
        help=f"how long to wait for jobs of a killed run (default {ORPHAN_WAIT_S:.0f})",
    )
    parser.add_argument(
        "--slurm",
        type=SlurmCheck,
        choices=list(SlurmCheck),
        default=SlurmCheck.AUTO,
        help="look for SLURM jobs of a killed run: auto (where a run of this directory used "
        "a cluster executor and squeue exists) or off",
    )
    args = parser.parse_args(argv)
    msg = prepare_resume(Path.cwd(), wait_s=args.wait_s, slurm=args.slurm)
    if msg != "no lock":
        print(f"pstm: {msg}", file=sys.stderr)


if __name__ == "__main__":
    main()
