"""SEG-Y in and out (segyio): pre-stack import to Zarr + Parquet, and a trace writer.

Import streams the file in chunks of ``chunk_traces`` traces, so memory does not grow with
the file: each chunk's samples go to the Zarr array and its header words, read column by
column with ``f.attributes(byte)``, go to one Parquet row group. Files are opened with
``ignore_geometry=True``: any trace order and any (or no) inline/crossline numbering works.

The Parquet table holds, per trace: ``trace_id`` (0-based position in the file), the
canonical words of :class:`pstm.io.headermap.HeaderWord` at the configured bytes
(coordinates in metres after the coordinate scalar), the derived midpoint/offset/azimuth
columns (:mod:`pstm.io.headers`) and every standard header word as ``segy_<name>``.
"""

from __future__ import annotations

import contextlib
import logging
import struct
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import segyio
from numpy.typing import NDArray

from pstm.config import SegyEndian, SegyHeaderBytes, SegyInputConfig, SegySampleFormat
from pstm.errors import InputDataError, InputFileNotFoundError
from pstm.io.atomic import atomic_output
from pstm.io.headermap import ALL_WORDS, RAW_PREFIX, SCALED_WORDS, HeaderWord, apply_scalar
from pstm.io.headers import (
    POSITION_COLUMNS,
    coordinate_scale_factor,
    has_positions,
    positions_problem,
    with_derived,
)
from pstm.io.traces import DT_ATTR, T0_ATTR, TRACE_CHUNK, create_trace_array

log = logging.getLogger(__name__)

TEXT_HEADER_BYTES = 3200
BINARY_HEADER_BYTES = 400
TRACE_HEADER_BYTES = 240
#: Binary-header fields read directly (byte offsets inside the 400-byte binary header).
_BIN_INTERVAL_US = 16  # bytes 3217-3218
_BIN_SAMPLES = 20  # bytes 3221-3222
_BIN_FORMAT = 24  # bytes 3225-3226
_BIN_EXT_HEADERS = 304  # bytes 3505-3506
#: Bytes per sample of the sample-format codes segyio reads.
SAMPLE_BYTES: dict[int, int] = {1: 4, 2: 4, 3: 2, 5: 4, 6: 8, 8: 1, 10: 4, 11: 2, 16: 1}
#: Format code written for each :class:`SegySampleFormat`.
FORMAT_CODE: dict[SegySampleFormat, int] = {SegySampleFormat.IBM: 1, SegySampleFormat.IEEE: 5}
_STRUCT_ENDIAN: dict[SegyEndian, str] = {SegyEndian.BIG: ">", SegyEndian.LITTLE: "<"}
#: Delay recording time (byte 109) and sample interval are in ms and us.
MS_PER_S = 1000.0
US_PER_S = 1_000_000.0


class SegyFormatError(InputDataError):
    """A file is not SEG-Y, is truncated, or lacks what pstm needs (e.g. coordinates)."""


@dataclass(frozen=True)
class SegyLayout:
    """What the binary header and the file size say about a SEG-Y file."""

    path: Path
    endian: SegyEndian
    format_code: int
    ns: int
    dt_s: float
    ntr: int
    n_ext_headers: int
    #: the binary header had no sample interval: ``dt_s`` is the first trace header's
    interval_from_trace: bool = False


#: Offset of the sample interval (us) in a trace header (bytes 117-118, 1-based).
_TRACE_INTERVAL_US = 116


def _binary_fields(raw: bytes, endian: SegyEndian) -> tuple[int, int, int, int]:
    e = _STRUCT_ENDIAN[endian]
    interval = struct.unpack_from(f"{e}H", raw, _BIN_INTERVAL_US)[0]
    ns = struct.unpack_from(f"{e}H", raw, _BIN_SAMPLES)[0]
    fmt = struct.unpack_from(f"{e}h", raw, _BIN_FORMAT)[0]
    n_ext = struct.unpack_from(f"{e}h", raw, _BIN_EXT_HEADERS)[0]
    return interval, ns, fmt, n_ext


#: where a SEG-Y path comes from, for the messages of a file that is not there or not SEG-Y
_PATH_HINT = "input.segy.path (pstm init: its SOURCE argument)"


def inspect_layout(path: str | Path, endian: SegyEndian) -> SegyLayout:
    """Check that ``path`` is a whole SEG-Y file and read its layout. Raises
    :class:`SegyFormatError` (not SEG-Y, wrong byte order, truncated) with how to fix it."""
    path = Path(path)
    if not path.is_file():
        raise InputFileNotFoundError(f"SEG-Y file not found: {path} (set {_PATH_HINT})")
    size = path.stat().st_size
    head = TEXT_HEADER_BYTES + BINARY_HEADER_BYTES
    if size < head:
        raise SegyFormatError(
            f"{path} is not a SEG-Y file: it has {size} bytes, fewer than the {head} bytes "
            f"of the textual and binary file headers. Check {_PATH_HINT}"
        )
    with path.open("rb") as fh:
        fh.seek(TEXT_HEADER_BYTES)
        binary = fh.read(BINARY_HEADER_BYTES)
    interval_us, ns, fmt, n_ext = _binary_fields(binary, endian)
    if fmt not in SAMPLE_BYTES:
        other = SegyEndian.LITTLE if endian is SegyEndian.BIG else SegyEndian.BIG
        if _binary_fields(binary, other)[2] in SAMPLE_BYTES:
            raise SegyFormatError(
                f"{path}: the binary header reads as {other.value} endian, not {endian.value}; "
                f"set input.segy.endian: {other.value} (pstm init: --endian {other.value})"
            )
        raise SegyFormatError(
            f"{path} is not a SEG-Y file: binary-header bytes 3225-3226 hold sample format "
            f"code {fmt}, not one of {sorted(SAMPLE_BYTES)}. Check {_PATH_HINT}"
        )
    if ns <= 0:
        raise SegyFormatError(
            f"{path}: the binary header gives {ns} samples per trace (bytes 3221-3222); "
            "pstm needs the sample count there. Fix the file's binary header"
        )
    if n_ext < 0:
        raise SegyFormatError(
            f"{path}: a variable number of extended textual headers (bytes 3505-3506 = "
            f"{n_ext}) is not supported; rewrite the file with a fixed count"
        )
    data_bytes = size - head - n_ext * TEXT_HEADER_BYTES
    trace_bytes = TRACE_HEADER_BYTES + ns * SAMPLE_BYTES[fmt]
    ntr, rest = divmod(data_bytes, trace_bytes)
    if data_bytes < 0 or rest:
        raise SegyFormatError(
            f"{path} is truncated or inconsistent: {max(data_bytes, 0)} bytes follow the file "
            f"headers, which is {ntr} whole traces of {trace_bytes} bytes ({ns} samples, format "
            f"{fmt}) plus {rest} bytes. The file was probably cut short: copy it again; if "
            "it is complete, its binary header (samples, format) is wrong"
        )
    if ntr == 0:
        raise SegyFormatError(f"{path} holds no traces; check {_PATH_HINT}")
    if interval_us <= 0:  # as other readers do: the first trace header's interval
        with path.open("rb") as fh:
            fh.seek(head + n_ext * TEXT_HEADER_BYTES + _TRACE_INTERVAL_US)
            e = _STRUCT_ENDIAN[endian]
            trace_interval = struct.unpack(f"{e}H", fh.read(2))[0]
        if trace_interval <= 0:
            raise SegyFormatError(
                f"{path}: the binary header gives a sample interval of {interval_us} us (bytes "
                "3217-3218) and the first trace header one of 0 us (bytes 117-118); pstm "
                "needs it. Fix the file's binary header"
            )
        return SegyLayout(path, endian, fmt, ns, trace_interval / US_PER_S, ntr, n_ext, True)
    return SegyLayout(path, endian, fmt, ns, interval_us / US_PER_S, ntr, n_ext)


def _open(layout: SegyLayout) -> segyio.SegyFile:
    try:
        return segyio.open(str(layout.path), "r", ignore_geometry=True, endian=layout.endian.value)
    except Exception as exc:  # segyio raises RuntimeError/ValueError/OSError
        raise SegyFormatError(f"segyio cannot read {layout.path}: {exc}") from None


def first_start_time_s(layout: SegyLayout) -> float:
    """Start time of the first trace (delay recording time, bytes 109-110, in ms)."""
    with _open(layout) as f:
        return float(f.header[0][segyio.TraceField.DelayRecordingTime]) / MS_PER_S


def segy_n_samples(cfg: SegyInputConfig) -> int:
    """Samples per trace of the configured file (checked, not imported)."""
    return inspect_layout(cfg.path, cfg.endian).ns


def _header_chunk(
    f: segyio.SegyFile, start: int, stop: int, header_bytes: SegyHeaderBytes
) -> dict[str, NDArray[np.generic]]:
    """Canonical and raw header columns of traces [start, stop)."""
    raw = {byte: np.asarray(f.attributes(byte)[start:stop]) for byte in ALL_WORDS.values()}
    scalar = raw[header_bytes.byte_of(HeaderWord.COORDINATE_SCALAR)]
    cols: dict[str, NDArray[np.generic]] = {"trace_id": np.arange(start, stop, dtype=np.int64)}
    for word in HeaderWord:
        values = raw[header_bytes.byte_of(word)]
        cols[word.key] = apply_scalar(values, scalar) if word in SCALED_WORDS else values
    for name, byte in ALL_WORDS.items():
        cols[RAW_PREFIX + name] = raw[byte]
    return cols


def check_coordinate_scale(
    path: Path, header_bytes: SegyHeaderBytes, words: Mapping[HeaderWord, NDArray[np.generic]]
) -> None:
    """Raise :class:`SegyFormatError` when the coordinates (metres, after the scalar) give
    offsets a power of ten off the offset word's
    (:func:`pstm.io.headers.coordinate_scale_factor`): the migration would put every event
    in the wrong place, and only the export would fail. ``words``: the canonical header
    words of some traces."""
    w = HeaderWord
    factor = coordinate_scale_factor(
        words[w.SIGNED_OFFSET], words[w.SOURCE_X], words[w.SOURCE_Y], words[w.RECEIVER_X],
        words[w.RECEIVER_Y],
    )  # fmt: skip
    if factor is None:
        return
    found = ", ".join(str(int(v)) for v in np.unique(words[w.COORDINATE_SCALAR])[:3])
    raise SegyFormatError(
        f"{path}: the source and receiver coordinates, with the coordinate scalar at byte "
        f"{header_bytes.byte_of(HeaderWord.COORDINATE_SCALAR)} ({found}), give offsets "
        f"{factor:g} times the offset word's (byte "
        f"{header_bytes.byte_of(HeaderWord.SIGNED_OFFSET)}) on nearly every trace: one of the "
        "two is wrong, most often the coordinate scalar (0 or 1: as stored; -100: stored in "
        "cm). Fix it in the file, or point input.segy.header_bytes.coordinate_scalar at the "
        "word that holds it. pstm takes offsets from the coordinates and uses the offset word "
        "for this check only: if that word is what is wrong, set "
        "input.segy.check_coordinate_scale: false (pstm init: --no-check-coordinate-scale)"
    )


def check_positions(
    path: Path, header_bytes: SegyHeaderBytes, sources_seen: bool, receivers_seen: bool
) -> None:
    """Raise :class:`SegyFormatError` when every source coordinate, or every receiver
    coordinate, of a file is zero (:func:`pstm.io.headers.positions_problem`); names the
    words, their bytes and the fix."""
    problem = positions_problem(sources_seen, receivers_seen)
    if problem is None:
        return
    missing = [HeaderWord[c.upper()] for side, seen in (("source", sources_seen),
               ("receiver", receivers_seen)) if not seen for c in POSITION_COLUMNS[side]]  # fmt: skip
    words = ", ".join(f"{w.key} at byte {header_bytes.byte_of(w)}" for w in missing)
    raise SegyFormatError(
        f"{path}: {problem} ({words}); pstm needs source and receiver positions. If the file "
        "stores them at other bytes, set input.segy.header_bytes (pstm init: --header-byte "
        "WORD=BYTE; see README, 'SEG-Y'); `pstm init <file>` prints what the headers hold"
    )


def read_canonical(
    cfg: SegyInputConfig, layout: SegyLayout | None = None
) -> dict[HeaderWord, NDArray[np.generic]]:
    """The canonical words (:class:`HeaderWord`) of every trace, coordinates in metres; read
    chunk by chunk, only these words (for ``pstm init``)."""
    layout = layout or inspect_layout(cfg.path, cfg.endian)
    parts: dict[HeaderWord, list[NDArray[np.generic]]] = {w: [] for w in HeaderWord}
    with _open(layout) as f:
        for start in range(0, layout.ntr, cfg.chunk_traces):
            stop = min(start + cfg.chunk_traces, layout.ntr)
            raw = {
                w: np.asarray(f.attributes(cfg.header_bytes.byte_of(w))[start:stop])
                for w in HeaderWord
            }
            for w in HeaderWord:
                value = raw[w]
                if w in SCALED_WORDS:
                    value = apply_scalar(value, raw[HeaderWord.COORDINATE_SCALAR])
                parts[w].append(value)
    return {w: np.concatenate(v) for w, v in parts.items()}


@dataclass(frozen=True)
class ImportStats:
    ntr: int
    ns: int
    dt_s: float
    t0_s: float
    seconds: float


def import_segy(
    cfg: SegyInputConfig, traces_out: str | Path, headers_out: str | Path
) -> ImportStats:
    """Stream a pre-stack SEG-Y file into a Zarr trace array and a Parquet header table.

    Raises :class:`SegyFormatError` for a file that is not SEG-Y, is truncated, has
    traces with different start times, or whose source/receiver coordinates are all zero.
    Both outputs are written to temporary names and renamed only when the whole file has
    been read, so an interrupted import leaves nothing behind.
    """
    t_start = time.perf_counter()
    layout = inspect_layout(cfg.path, cfg.endian)
    # Whole Zarr chunks per read: no read-modify-write of a chunk by the next read.
    chunk = max(TRACE_CHUNK, (cfg.chunk_traces // TRACE_CHUNK) * TRACE_CHUNK)
    sources_seen = receivers_seen = False  # a non-zero coordinate of each side
    delay_ms: int | None = None
    if layout.interval_from_trace:
        log.warning(
            "%s: the binary header gives no sample interval (bytes 3217-3218 are 0); using "
            "the first trace header's, %g us (bytes 117-118)",
            layout.path,
            layout.dt_s * US_PER_S,
        )
    log.info(
        "import %s: %d traces x %d samples, dt %.6f s, format %d, %s endian, %d per chunk",
        layout.path,
        layout.ntr,
        layout.ns,
        layout.dt_s,
        layout.format_code,
        layout.endian.value,
        chunk,
    )
    with (
        _open(layout) as f,
        atomic_output(traces_out) as tmp_traces,
        atomic_output(headers_out) as tmp_headers,
    ):
        arr = create_trace_array(tmp_traces, layout.ntr, layout.ns)
        writer: pq.ParquetWriter | None = None
        try:
            for start in range(0, layout.ntr, chunk):
                stop = min(start + chunk, layout.ntr)
                cols = _header_chunk(f, start, stop, cfg.header_bytes)
                delays = cols[RAW_PREFIX + "DelayRecordingTime"]
                if delay_ms is None:
                    delay_ms = int(delays[0])
                if np.any(delays != delay_ms):
                    bad = start + int(np.flatnonzero(delays != delay_ms)[0])
                    raise SegyFormatError(
                        f"{layout.path}: trace {bad} starts at {int(delays[bad - start])} ms but "
                        f"trace 0 at {delay_ms} ms (delay recording time, bytes 109-110); pstm "
                        "needs one start time for all traces. Pad or shift the traces first"
                    )
                sources_seen = sources_seen or has_positions(cols["source_x"], cols["source_y"])
                receivers_seen = receivers_seen or has_positions(
                    cols["receiver_x"], cols["receiver_y"]
                )
                if start == 0 and cfg.check_coordinate_scale:  # the first chunk is plenty
                    words = {word: cols[word.key] for word in HeaderWord}
                    check_coordinate_scale(layout.path, cfg.header_bytes, words)
                table = with_derived(pa.table(cols))
                if writer is None:
                    writer = pq.ParquetWriter(str(tmp_headers), table.schema)
                writer.write_table(table)
                data = np.asarray(f.trace.raw[start:stop], dtype=np.float32)
                arr[start:stop] = data.reshape(stop - start, layout.ns)
                elapsed = time.perf_counter() - t_start
                log.info(
                    "import %s: %d/%d traces (%.0f%%), %.1f s",
                    layout.path.name,
                    stop,
                    layout.ntr,
                    100.0 * stop / layout.ntr,
                    elapsed,
                )
        finally:
            if writer is not None:
                writer.close()
        check_positions(layout.path, cfg.header_bytes, sources_seen, receivers_seen)
        assert delay_ms is not None
        t0_s = delay_ms / MS_PER_S
        arr.attrs.update({DT_ATTR: layout.dt_s, T0_ATTR: t0_s})
    seconds = time.perf_counter() - t_start
    log.info("imported %d traces in %.1f s", layout.ntr, seconds)
    return ImportStats(layout.ntr, layout.ns, layout.dt_s, t0_s, seconds)


#: Trace identification code (bytes 29-30) of the traces pstm writes: seismic data.
TRACE_ID_SEISMIC = 1
#: Measurement system (binary header bytes 3255-3256): metres.
MEASUREMENT_METRES = 1
#: Lines of the textual header (C1..C40); ``SegyWriteSpec.text`` gives one per line of
#: C1..C38 (rev 1: C39 names the revision, C40 ends the header).
TEXT_LINES = 40
#: Coordinate units (trace bytes 89-90): length (metres or feet, as the measurement system).
COORDINATE_UNITS_LENGTH = 1


@dataclass(frozen=True)
class SegyWriteSpec:
    """Layout of a SEG-Y file to write."""

    ntr: int
    ns: int
    dt_s: float
    t0_s: float = 0.0
    sample_format: SegySampleFormat = SegySampleFormat.IEEE
    endian: SegyEndian = SegyEndian.BIG
    coordinate_scalar: int = -100
    text: str = "written by pstm"  # the textual header: one line per C line (76 characters)
    #: binary header bytes 3213-3214 (traces per ensemble: 1 for a stack, the offset
    #: classes of a gather); None writes 0 (not known)
    traces_per_ensemble: int | None = None

    def interval_us(self, path: Path) -> int:
        interval_us = round(self.dt_s * US_PER_S)
        if abs(interval_us - self.dt_s * US_PER_S) > 1e-6 * US_PER_S * self.dt_s or not (
            0 < interval_us <= np.iinfo(np.uint16).max
        ):
            raise InputDataError(
                f"cannot write {path}: sample interval {self.dt_s} s is not a whole number of "
                "microseconds between 1 us and 65.535 ms (SEG-Y bytes 3217-3218)"
            )
        return interval_us

    def delay_ms(self, path: Path) -> int:
        delay_ms = round(self.t0_s * MS_PER_S)
        if abs(delay_ms - self.t0_s * MS_PER_S) > 1e-6:
            raise InputDataError(
                f"cannot write {path}: start time {self.t0_s} s is not a whole number of "
                "milliseconds (SEG-Y delay recording time, bytes 109-110); choose a start "
                "time (grid.t0_s) in whole ms"
            )
        return delay_ms


class SegyWriter:
    """Write a SEG-Y file block by block (bounded memory); see :func:`write_segy`.

    ``headers`` of a block map a :class:`HeaderWord` (at its standard byte) or a raw byte
    position to one value per trace. Coordinate words (:data:`SCALED_WORDS`) are in metres
    and stored as integers with the coordinate scalar; other words are stored as given.
    """

    def __init__(self, f: segyio.SegyFile, spec: SegyWriteSpec, path: Path) -> None:
        self._f = f
        self._spec = spec
        self._path = path
        self._interval_us = spec.interval_us(path)
        self._delay_ms = spec.delay_ms(path)
        self.written = 0

    def _to_int(self, key: HeaderWord | int, values: NDArray[np.generic]) -> NDArray[np.int64]:
        scalar = self._spec.coordinate_scalar
        if not (isinstance(key, HeaderWord) and key in SCALED_WORDS):
            return np.rint(np.asarray(values, dtype=np.float64)).astype(np.int64)
        v = np.asarray(values, dtype=np.float64)
        scaled = np.rint(v / scalar) if scalar > 0 else np.rint(v * -scalar)
        if np.any(~np.isfinite(scaled)) or np.any(np.abs(scaled) > np.iinfo(np.int32).max):
            raise InputDataError(
                f"cannot write {self._path}: {key.key} does not fit SEG-Y's 32-bit integers with "
                f"coordinate scalar {scalar}; use a scalar of smaller magnitude"
            )
        return scaled.astype(np.int64)

    def write(
        self, data: NDArray[np.float32], headers: Mapping[HeaderWord | int, NDArray[np.generic]]
    ) -> None:
        data = np.asarray(data, dtype=np.float32)
        n = data.shape[0]
        first = self.written
        if data.ndim != 2 or data.shape[1] != self._spec.ns or first + n > self._spec.ntr:
            raise InputDataError(
                f"cannot write {self._path}: block of shape {data.shape} does not fit "
                f"{self._spec.ntr} traces x {self._spec.ns} samples after {first} traces"
            )
        words: dict[int, NDArray[np.int64]] = {}
        for key, values in headers.items():
            if len(values) != n:
                raise InputDataError(f"header {key!s} has {len(values)} values for {n} traces")
            words[int(key)] = self._to_int(key, values)
        const = {
            int(segyio.TraceField.TraceIdentificationCode): TRACE_ID_SEISMIC,
            int(segyio.TraceField.CoordinateUnits): COORDINATE_UNITS_LENGTH,
            int(HeaderWord.COORDINATE_SCALAR): self._spec.coordinate_scalar,
            ALL_WORDS["TRACE_SAMPLE_COUNT"]: self._spec.ns,
            ALL_WORDS["TRACE_SAMPLE_INTERVAL"]: self._interval_us,
            ALL_WORDS["DelayRecordingTime"]: self._delay_ms,
        }
        for byte, value in const.items():
            words[byte] = np.full(n, value, np.int64)
        sequence = np.arange(first + 1, first + n + 1)
        words.setdefault(int(segyio.TraceField.TRACE_SEQUENCE_LINE), sequence)
        words.setdefault(ALL_WORDS["TRACE_SEQUENCE_FILE"], sequence)
        keys = list(words)
        rows = np.stack([words[k] for k in keys], axis=1).tolist()
        for i in range(n):
            self._f.header[first + i] = dict(zip(keys, rows[i], strict=True))
            self._f.trace[first + i] = data[i].copy()  # segyio converts IBM in place
        self.written += n


@contextlib.contextmanager
def segy_writer(path: str | Path, spec: SegyWriteSpec) -> Iterator[SegyWriter]:
    """A :class:`SegyWriter` on a temporary file, renamed to ``path`` when every trace
    has been written (a partial file is never left under the final name)."""
    path = Path(path)
    segy_spec = segyio.spec()
    segy_spec.format = FORMAT_CODE[spec.sample_format]
    segy_spec.samples = np.arange(spec.ns) * spec.dt_s * MS_PER_S + spec.t0_s * MS_PER_S
    segy_spec.tracecount = spec.ntr
    segy_spec.endian = spec.endian.value
    with atomic_output(path) as tmp, segyio.create(str(tmp), segy_spec) as f:
        writer = SegyWriter(f, spec, path)
        lines = {i + 1: t[:76] for i, t in enumerate(spec.text.splitlines()[: TEXT_LINES - 2])}
        if spec.endian is SegyEndian.BIG:  # a rev 1 file (below)
            lines[TEXT_LINES - 1] = "SEG Y REV1"
        lines[TEXT_LINES] = "END TEXTUAL HEADER"
        f.text[0] = segyio.tools.create_text_header(lines)
        f.bin.update(
            {
                segyio.BinField.Traces: spec.traces_per_ensemble or 0,
                segyio.BinField.AuxTraces: 0,  # segyio's default is the trace count
                segyio.BinField.Interval: spec.interval_us(path),
                segyio.BinField.Samples: spec.ns,
                segyio.BinField.Format: segy_spec.format,
                # every trace the same length, coordinates in metres
                segyio.BinField.TraceFlag: 1,
                segyio.BinField.MeasurementSystem: MEASUREMENT_METRES,
            }
        )
        if spec.endian is SegyEndian.BIG:  # rev 1 is big-endian: a little-endian file
            # claims no revision (segyio would swap the two bytes into 0x0001)
            f.bin.update(
                {  # SEG-Y rev 1: bytes 3501-3502 = 0x0100 (inline/crossline, CDP X/Y there)
                    segyio.BinField.SEGYRevision: 1,
                    segyio.BinField.SEGYRevisionMinor: 0,
                }
            )
        yield writer
        if writer.written != spec.ntr:
            raise InputDataError(
                f"{path}: {writer.written} of {spec.ntr} traces written; nothing was kept"
            )


def write_segy(
    path: str | Path,
    data: NDArray[np.float32],
    headers: Mapping[HeaderWord | int, NDArray[np.generic]],
    dt_s: float,
    t0_s: float = 0.0,
    sample_format: SegySampleFormat = SegySampleFormat.IEEE,
    endian: SegyEndian = SegyEndian.BIG,
    coordinate_scalar: int = -100,
) -> None:
    """Write traces (ntr x ns) and their header words to a SEG-Y file in one go (see
    :class:`SegyWriter` for ``headers``)."""
    spec = SegyWriteSpec(
        data.shape[0], data.shape[1], dt_s, t0_s, sample_format, endian, coordinate_scalar
    )
    with segy_writer(path, spec) as writer:
        writer.write(data, headers)
