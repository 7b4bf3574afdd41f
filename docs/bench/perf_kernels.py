"""Where the numba kernels spend their time, instruction by instruction (Linux ``perf``).

numba's machine code has no symbols for ``perf``; this script compiles the kernels into an
empty numba cache (so that their LLVM modules are at hand), writes ``/tmp/perf-<pid>.map``
(perf's map of JIT code: address, size, name) and dumps the machine code of the parallel
regions, then runs the benchmark's call (``pstm bench``'s 2D line) in a loop. ``report``
then reads the samples and prints, per parallel region, its share of all samples and its
hot 256-byte stretches with the instructions that identify them (square roots and
divisions: a time loop's arithmetic; ``vpermt2ps``: the window loads; gathers).

Usage (from the repository root; perf must be allowed to sample, e.g. as root):

    rm -rf /tmp/pk && mkdir -p /tmp/pk && NUMBA_CACHE_DIR=/tmp/pk/cache NUMBA_NUM_THREADS=2 \\
      perf record -D 45000 -o /tmp/pk/perf.data \\
      .venv/bin/python docs/bench/perf_kernels.py run everything 500
    perf script -i /tmp/pk/perf.data -F ip > /tmp/pk/ips.txt
    .venv/bin/python docs/bench/perf_kernels.py report /tmp/pk/ips.txt

``-D`` skips the compilation (about 30 s on a 2-core machine); ``run`` takes a feature set
(``plain``, ``everything``, ``no-aa``) and a number of calls (enough to outlast the
delay: 500 calls of ``everything`` run about 50 s).
"""

from __future__ import annotations

import collections
import ctypes
import dataclasses
import os
import re
import subprocess
import sys
import time
from pathlib import Path

#: Where ``run`` dumps the machine code of the parallel regions (code_<address>.bin).
DUMP_DIR = Path("/tmp/pk")
#: Bytes of machine code dumped per parallel region (more than any kernel has).
DUMP_BYTES = 400_000
#: The report's granularity (bytes of machine code) and its smallest share (%).
STRETCH_BYTES, MIN_SHARE = 256, 1.0
MARKERS = ("vsqrtps", "vdivps", "vpermt2ps", "vgatherdps", "vgatherqps", "vsqrtss", "vdivss")


def run(features: str, calls: int) -> None:
    import numba
    import numpy as np

    from pstm.bench import make_problem, options_for
    from pstm.config import AntiAlias, Backend, Interpolation
    from pstm.kernels import _numba, _numba_traces, get_kernel

    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    problem = make_problem(2000, 200, 1, 500)
    options = options_for(
        features.replace("no-aa", "everything"), Interpolation.OVERSAMPLED_NEAREST, 8, 2
    )
    if features == "no-aa":
        options = dataclasses.replace(options, antialias=AntiAlias.NONE)
    kernel = get_kernel(Backend.NUMBA)
    shape = (options.n_offset_classes, 200, 1, 500)
    gathers, fold = np.zeros(shape, np.float32), np.zeros(shape, np.int32)
    kernel(problem.batch, problem.target, options, gathers, fold)  # compiles
    entries = []
    for dispatcher in (
        _numba._migrate_features,
        _numba._migrate_plain,
        _numba.read_ranges,
        _numba_traces.prepare_block,
    ):
        for compiled in dispatcher.overloads.values():
            library = compiled.library
            for fn in library._final_module.functions:  # freshly compiled only, not cached
                if not fn.is_declaration:
                    entries.append((library.get_pointer_to_function(fn.name), fn.name))
    if not entries:
        sys.exit("no compiled code found: run with an empty NUMBA_CACHE_DIR")
    entries.sort()
    DUMP_DIR.mkdir(parents=True, exist_ok=True)
    with open(f"/tmp/perf-{os.getpid()}.map", "w") as fh:
        for (address, name), (after, _) in zip(
            entries, [*entries[1:], (entries[-1][0] + DUMP_BYTES, "")], strict=True
        ):
            fh.write(f"{address:x} {after - address:x} {name[:160]}\n")
            if "parfor_gufunc" in name and not name.startswith("__gufunc"):
                code = ctypes.string_at(address, min(after - address, DUMP_BYTES))
                (DUMP_DIR / f"code_{address:x}.bin").write_bytes(code)
    t0 = time.perf_counter()
    for _ in range(calls):
        kernel(problem.batch, problem.target, options, gathers, fold)
    print(f"{features}: {(time.perf_counter() - t0) / calls:.4f} s per call", file=sys.stderr)


def report(ips_file: str) -> None:
    ips = [int(line, 16) for line in Path(ips_file).read_text().split() if line.strip()]
    for dump in sorted(DUMP_DIR.glob("code_*.bin")):
        base = int(dump.stem[5:], 16)
        hits = collections.Counter(i for i in ips if base <= i < base + DUMP_BYTES)
        if not hits:
            continue
        print(f"parallel region at {base:x}: {100 * sum(hits.values()) / len(ips):.1f}% of samples")
        asm = subprocess.run(
            ["objdump", "-D", "-b", "binary", "-m", "i386:x86-64", f"--adjust-vma={base:#x}", str(dump)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        ops: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for line in asm.splitlines():
            m = re.match(r"\s*([0-9a-f]+):\s+(?:[0-9a-f]{2} )+\s*(\S+)", line)
            if m and m.group(2).startswith(MARKERS):
                ops[(int(m.group(1), 16) - base) // STRETCH_BYTES][m.group(2)] += 1
        stretches = collections.Counter()
        for address, n in hits.items():
            stretches[(address - base) // STRETCH_BYTES] += n
        for k, n in sorted(stretches.items()):
            if 100 * n / len(ips) >= MIN_SHARE:
                print(f"  +{k * STRETCH_BYTES:6x} {100 * n / len(ips):5.1f}%  {dict(ops[k])}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["run"]:
        run(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1:2] == ["report"]:
        report(sys.argv[2])
    else:
        sys.exit(__doc__)
