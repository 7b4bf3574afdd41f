"""SEG-Y test files made by code (segyio through :func:`pstm.io.segy.write_segy`).

| maker                    | what it is for                                              |
|--------------------------|-------------------------------------------------------------|
| ``survey_to_segy``       | the built-in synthetic survey as a pre-stack SEG-Y file     |
| ``survey_to_zarr``       | the same survey (coordinates rounded like the SEG-Y) as Zarr |
| ``raw_ieee_segy``        | a large IEEE file written with numpy, fast, for memory runs |
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pstm.config import SegyEndian, SegySampleFormat, parse_config
from pstm.io.headermap import HeaderWord
from pstm.io.headers import write_headers
from pstm.io.traces import write_traces
from pstm.synthetic import make_survey, write_survey_segy

COORDS = {
    HeaderWord.SOURCE_X: "source_x",
    HeaderWord.SOURCE_Y: "source_y",
    HeaderWord.RECEIVER_X: "receiver_x",
    HeaderWord.RECEIVER_Y: "receiver_y",
}


def rounded(values: np.ndarray, scalar: int) -> np.ndarray:
    """Coordinates as a SEG-Y file with ``scalar`` stores and pstm reads them back."""
    if scalar < 0:
        return np.rint(values * -scalar) / -scalar
    return np.rint(values / scalar) * scalar


def survey(config: dict[str, Any]) -> tuple[np.ndarray, pa.Table, float]:
    cfg = parse_config(config, "test")
    data, table, _ = make_survey(cfg.synthetic)
    return data, table, cfg.synthetic.dt_s


def survey_to_segy(
    path: Path,
    config: dict[str, Any],
    sample_format: SegySampleFormat = SegySampleFormat.IEEE,
    endian: SegyEndian = SegyEndian.BIG,
    scalar: int = -100,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Write the synthetic survey of ``config`` (:func:`pstm.synthetic.write_survey_segy`);
    return its samples and the coordinates as the file stores them (rounded to the
    scalar)."""
    synthetic = parse_config(config, "test").synthetic
    data, table = write_survey_segy(synthetic, path, sample_format, endian, scalar)
    return data, {name: rounded(table.column(name).to_numpy(), scalar) for name in COORDS.values()}


def survey_to_zarr(
    directory: Path, config: dict[str, Any], scalar: int = -100
) -> tuple[Path, Path]:
    """The same survey as Zarr + Parquet, coordinates rounded as in the SEG-Y file."""
    data, table, dt = survey(config)
    cols = {name: rounded(table.column(name).to_numpy(), scalar) for name in COORDS.values()}
    traces, headers = directory / "traces.zarr", directory / "headers.parquet"
    write_traces(traces, data, 0.0, dt)
    write_headers(headers, pa.table(cols))
    return traces, headers


def raw_ieee_segy(path: Path, ntr: int, ns: int, dt_us: int = 4000, chunk: int = 20000) -> int:
    """A big-endian IEEE SEG-Y of ``ntr`` traces written directly with numpy (fast and in
    bounded memory): random samples, source/receiver on a line. Returns its size in bytes."""
    binary = np.zeros(200, dtype=">i2")  # 400 bytes
    binary[8], binary[10], binary[12] = dt_us, ns, 5  # bytes 3217, 3221, 3225
    trace = np.dtype([("h", ">i4", 60), ("d", ">f4", ns)])
    rng = np.random.default_rng(1)
    with path.open("wb") as fh:
        fh.write(b" " * 3200)
        fh.write(binary.tobytes())
        for start in range(0, ntr, chunk):
            n = min(chunk, ntr - start)
            block = np.zeros(n, dtype=trace)
            ids = np.arange(start, start + n)
            h = block["h"]
            h[:, 1] = ids + 1  # byte 5
            h[:, 17] = -100 & 0xFFFF  # bytes 71-72: scalar -100 (low half of bytes 69-72)
            h[:, 18] = (ids % 1000) * 2500  # source x (byte 73), cm
            h[:, 19] = (ids // 1000) * 2500  # source y (byte 77)
            h[:, 20] = h[:, 18] + 100000  # receiver x (byte 81)
            h[:, 21] = h[:, 19]  # receiver y (byte 85)
            h[:, 28] = ns  # bytes 115-116 (low half of bytes 113-116)
            h[:, 29] = dt_us << 16  # bytes 117-118 (high half of bytes 117-120)
            block["d"] = rng.standard_normal((n, ns), dtype=np.float32)
            fh.write(block.tobytes())
    return path.stat().st_size


_CHILD = """
import sys
from pstm.config import SegyInputConfig
from pstm.io.segy import import_segy
import_segy(SegyInputConfig(path=sys.argv[1], chunk_traces=int(sys.argv[2])), sys.argv[3], sys.argv[4])
"""


def import_peak_rss_mb(segy: Path, out_dir: Path, chunk_traces: int) -> float:
    """Import ``segy`` in a child process; return the child's peak RSS in MiB
    (``os.wait4`` gives that child's own resource usage)."""
    import os
    import subprocess
    import sys

    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _CHILD,
            str(segy),
            str(chunk_traces),
            str(out_dir / "traces.zarr"),
            str(out_dir / "headers.parquet"),
        ],
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise AssertionError(f"import of {segy} failed with status {proc.returncode}")
    return usage.ru_maxrss / 1024.0  # Linux reports KiB
