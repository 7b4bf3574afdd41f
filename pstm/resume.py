"""Make a killed run resumable with the same command (``make run``).

After SIGKILL, Snakemake leaves ``.snakemake/locks/*`` behind and refuses to start. The
locks are stale exactly when no live Snakemake process works in this directory; then they
are removed. If one is alive, nothing is touched and we exit non-zero, so a tile can never
run twice at the same time. Incomplete outputs are handled by ``rerun-incomplete: true``
in the profile (tiles are renamed into place, so a killed tile leaves nothing complete).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def live_snakemake_pids(workdir: Path) -> list[int]:
    """PIDs of Snakemake processes whose working directory is ``workdir`` (Linux /proc)."""
    pids = []
    me = os.getpid()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            pid = int(proc.name)
            if pid == me:
                continue
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            if not any(
                b"snakemake" in Path(part.decode(errors="replace")).name.encode()
                for part in cmd[:3]
            ):
                continue
            if Path(os.readlink(proc / "cwd")).resolve() == workdir.resolve():
                pids.append(pid)
        except (OSError, ValueError):
            continue  # process ended or is not ours to inspect
    return pids


def clear_stale_lock(workdir: Path) -> str:
    locks = workdir / ".snakemake" / "locks"
    held = sorted(locks.glob("*")) if locks.is_dir() else []
    if not held:
        return "no lock"
    pids = live_snakemake_pids(workdir)
    if pids:
        raise SystemExit(
            f"pstm: Snakemake is already running in {workdir} (pid {', '.join(map(str, pids))}); "
            "wait for it or stop it before starting another run"
        )
    for lock in held:
        lock.unlink()
    return f"removed {len(held)} stale lock file(s) left by a killed run"


def main() -> None:
    msg = clear_stale_lock(Path.cwd())
    if msg != "no lock":
        print(f"pstm: {msg}", file=sys.stderr)


if __name__ == "__main__":
    main()
