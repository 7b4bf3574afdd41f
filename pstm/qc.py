"""QC figures: inline, crossline and time slice of the stack, and a fold time slice."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import zarr
from numpy.typing import NDArray

from pstm.config import QcConfig
from pstm.io.atomic import atomic_output

QC_FIGURES = ("inline", "crossline", "timeslice", "fold")


def read_array(root: zarr.Group, name: str) -> NDArray[Any]:
    """A whole array of an image group, as numpy."""
    arr = root[name]
    if not isinstance(arr, zarr.Array):
        raise TypeError(f"{name} in {root.store} is not an array")
    return np.asarray(arr[...])


def write_qc(image_zarr: str | Path, qc: QcConfig, out_dir: str | Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    root = zarr.open_group(str(image_zarr), mode="r")
    stack, fold = read_array(root, "image"), read_array(root, "fold")
    inl, xl, t = read_array(root, "inline"), read_array(root, "crossline"), read_array(root, "time")
    nil, nxl, nt = stack.shape
    i = nil // 2 if qc.inline_index is None else qc.inline_index
    j = nxl // 2 if qc.crossline_index is None else qc.crossline_index
    k = (
        nt // 2
        if qc.time_s is None
        else int(np.clip(round((qc.time_s - t[0]) / (t[1] - t[0])), 0, nt - 1))
    )
    clip = float(np.percentile(np.abs(stack), qc.clip_percentile)) or 1.0
    panels: dict[
        str, tuple[NDArray[Any], str, tuple[float, float, float, float], str, str, str]
    ] = {
        "inline": (
            stack[i].T,
            f"inline {inl[i]}",
            (xl[0], xl[-1], t[-1], t[0]),
            "crossline",
            "time (s)",
            "gray",
        ),
        "crossline": (
            stack[:, j].T,
            f"crossline {xl[j]}",
            (inl[0], inl[-1], t[-1], t[0]),
            "inline",
            "time (s)",
            "gray",
        ),
        "timeslice": (
            stack[:, :, k].T,
            f"time slice {t[k]:.3f} s",
            (inl[0], inl[-1], xl[0], xl[-1]),
            "inline",
            "crossline",
            "gray",
        ),
        "fold": (
            fold[:, :, k].T,
            f"fold at {t[k]:.3f} s",
            (inl[0], inl[-1], xl[0], xl[-1]),
            "inline",
            "crossline",
            "viridis",
        ),
    }
    out_dir = Path(out_dir)
    written = []
    for name in QC_FIGURES:
        data, title, extent, xlabel, ylabel, cmap = panels[name]
        fig, ax = plt.subplots(figsize=(6, 4.5))
        vmin, vmax = (-clip, clip) if cmap == "gray" else (None, None)
        origin: Literal["upper", "lower"] = "upper" if "time" in ylabel else "lower"
        im = ax.imshow(
            data, aspect="auto", cmap=cmap, extent=extent, origin=origin, vmin=vmin, vmax=vmax
        )
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        fig.colorbar(im, ax=ax)
        path = out_dir / f"{name}.png"
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=qc.dpi, format="png")
        plt.close(fig)
        written.append(path)
    return written
