"""SEG-Y export of the assembled image: the stack, the offset-class gathers and the fold.

Traces are written inline by inline (bounded memory), in the order inline, crossline
(and offset class for the gathers); the fold (every class's together) is laid out as the
stack, its counts as sample values. Each trace carries its inline and crossline numbers
(bytes 189/193), the bin centre as CDP X/Y (181/185) and as source and group X/Y
(73-85), all scaled by ``export.coordinate_scalar`` (byte 71), a running bin number
(CDP, byte 21) and, in the gathers, the offset-class centre in metres (byte 37; the
single all-offset class has offset 0), the trace sequence numbers (bytes 1 and 5), the
trace number in its bin (byte 25: the class + 1 in the gathers), trace identification 1
(seismic, byte 29) and coordinate units 1 (length, byte 89). The binary header says rev 1
(big endian), fixed-length traces, metres and the traces per ensemble (1; the classes in
the gathers); the textual header the dimensions, time axis, byte map and scalar, then
"SEG Y REV1" and "END TEXTUAL HEADER" in C39/C40 (:func:`pstm.io.segy.segy_writer`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr
from numpy.typing import NDArray

from pstm import __version__
from pstm.config import ExportConfig
from pstm.errors import InputDataError, InputFileNotFoundError
from pstm.io.headermap import ALL_WORDS, HeaderWord
from pstm.io.segy import SegyWriteSpec, segy_writer

_CDP_BYTE = ALL_WORDS["CDP"]
#: trace number within the ensemble (the bin): 1 in the stack, the offset class + 1 in the
#: gathers
_TRACE_IN_ENSEMBLE_BYTE = ALL_WORDS["CDP_TRACE"]  # byte 25 (13 is the field record's)
#: Most bytes of image (stack or gathers) the export reads at once: whole rows of the
#: image's chunks where they fit, so that each compressed chunk is decoded once (one read
#: per inline decoded every chunk once per inline of it: 1.0 of the 1.5 s of the
#: end-to-end benchmark's export), and at least one inline.
EXPORT_BLOCK_BYTES = 256 * 2**20


def _array(root: zarr.Group, name: str, image: Path) -> zarr.Array:
    node = root.get(name)
    if not isinstance(node, zarr.Array):
        raise InputDataError(
            f"{image} has no array '{name}'; it is not a pstm image (rerun assembly)"
        )
    return node


def _sampling(time: NDArray[np.float64], image: Path) -> tuple[float, float]:
    if len(time) < 2:
        raise InputDataError(f"{image}: the time axis has {len(time)} sample(s); export needs 2+")
    return float(time[1] - time[0]), float(time[0])


def _bin_headers(
    inlines: NDArray[np.int64],
    crosslines: NDArray[np.int64],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    il_index: int,
    repeat: int,
) -> dict[HeaderWord | int, NDArray[np.generic]]:
    """Headers of one inline's traces, each bin repeated ``repeat`` times (offset classes)."""
    nxl = len(crosslines)
    bx, by = np.repeat(x[il_index], repeat), np.repeat(y[il_index], repeat)
    return {
        HeaderWord.INLINE: np.full(nxl * repeat, inlines[il_index]),
        HeaderWord.CROSSLINE: np.repeat(crosslines, repeat),
        HeaderWord.CDP_X: bx,
        HeaderWord.CDP_Y: by,
        HeaderWord.SOURCE_X: bx,
        HeaderWord.SOURCE_Y: by,
        HeaderWord.RECEIVER_X: bx,
        HeaderWord.RECEIVER_Y: by,
        _CDP_BYTE: np.repeat(il_index * nxl + np.arange(nxl) + 1, repeat),
    }


def export_image(
    image: str | Path,
    cfg: ExportConfig,
    stack_out: str | Path,
    gathers_out: str | Path,
    fold_out: str | Path,
) -> tuple[int, int]:
    """Write ``stack_out``, ``gathers_out`` and ``fold_out`` (the fold of every class
    together, in the stack's layout) from ``image`` (``results/image.zarr``). Returns the
    number of traces of the stack and of the gathers."""
    image = Path(image)
    if not image.exists():
        raise InputFileNotFoundError(f"image not found: {image}; run the workflow first")
    root = zarr.open_group(str(image), mode="r")
    inlines = np.asarray(_array(root, "inline", image)[:], dtype=np.int64)
    crosslines = np.asarray(_array(root, "crossline", image)[:], dtype=np.int64)
    x = np.asarray(_array(root, "x", image)[:], dtype=np.float64)
    y = np.asarray(_array(root, "y", image)[:], dtype=np.float64)
    centres = np.asarray(_array(root, "offset_class", image)[:], dtype=np.float64)
    offsets = np.where(np.isfinite(centres), centres, 0.0)
    dt_s, t0_s = _sampling(np.asarray(_array(root, "time", image)[:], dtype=np.float64), image)
    stack, gathers = _array(root, "image", image), _array(root, "gathers", image)
    nil, nxl, nt = stack.shape
    ncls = gathers.shape[0]

    def spec(ntr: int, what: str, per_ensemble: int) -> SegyWriteSpec:
        return SegyWriteSpec(
            ntr=ntr,
            traces_per_ensemble=per_ensemble,
            ns=nt,
            dt_s=dt_s,
            t0_s=t0_s,
            sample_format=cfg.sample_format,
            endian=cfg.endian,
            coordinate_scalar=cfg.coordinate_scalar,
            text="\n".join(
                [
                    f"pstm {__version__} {what}: {nil} inlines x {nxl} crosslines x {nt} samples",
                    f"time: {nt} samples from {t0_s * 1e3:g} ms every {dt_s * 1e3:g} ms",
                    f"inline: byte {int(HeaderWord.INLINE)}, crossline: "
                    f"{int(HeaderWord.CROSSLINE)} (rev 1), offset: {int(HeaderWord.SIGNED_OFFSET)}"
                    " (m)",
                    f"CDP X/Y: bytes {int(HeaderWord.CDP_X)}/{int(HeaderWord.CDP_Y)}, coordinate "
                    f"scalar {cfg.coordinate_scalar} at {int(HeaderWord.COORDINATE_SCALAR)}",
                    "coordinates in metres, in the input survey's coordinate system",
                ]
            ),
        )

    for volume, out, what in (
        (stack, stack_out, "stack"),
        (_array(root, "fold", image), fold_out, "fold (contributions per sample, all classes)"),
    ):
        with segy_writer(out, spec(nil * nxl, what, 1)) as writer:
            for i0, i1 in _inline_blocks(nil, volume.chunks[0], nxl * nt * 4):
                block = np.asarray(volume[i0:i1], dtype=np.float32)  # (inlines, nxl, nt)
                for i in range(i0, i1):
                    headers = _bin_headers(inlines, crosslines, x, y, i, 1)
                    headers[HeaderWord.SIGNED_OFFSET] = np.zeros(nxl)
                    headers[_TRACE_IN_ENSEMBLE_BYTE] = np.ones(nxl)
                    writer.write(block[i - i0], headers)
    gathers_spec = spec(nil * nxl * ncls, "offset-class gathers", ncls)
    with segy_writer(gathers_out, gathers_spec) as writer:
        for i0, i1 in _inline_blocks(nil, gathers.chunks[1], ncls * nxl * nt * 4):
            block = np.asarray(gathers[:, i0:i1])  # (ncls, inlines, nxl, nt)
            for i in range(i0, i1):
                headers = _bin_headers(inlines, crosslines, x, y, i, ncls)
                headers[HeaderWord.SIGNED_OFFSET] = np.tile(offsets, nxl)
                headers[_TRACE_IN_ENSEMBLE_BYTE] = np.tile(np.arange(1, ncls + 1), nxl)
                traces = block[:, i - i0].transpose(1, 0, 2).reshape(nxl * ncls, nt)
                writer.write(traces, headers)
    return nil * nxl, nil * nxl * ncls


def _inline_blocks(nil: int, chunk: int, inline_bytes: int) -> list[tuple[int, int]]:
    """Inline ranges to read at once: the image's chunk rows (``chunk`` inlines), cut to
    EXPORT_BLOCK_BYTES, at least one inline each."""
    step = max(1, min(chunk, EXPORT_BLOCK_BYTES // max(1, inline_bytes)))
    return [(i, min(nil, i + step)) for i in range(0, nil, step)]
