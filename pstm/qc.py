"""QC figures: inline, crossline and time slice of the stack, a fold time slice, the
offset-class gathers at one bin (:func:`write_qc`), and the velocity actually used
(:func:`write_velocity_qc`, drawn before the migration)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from pstm.config import QcConfig
from pstm.grid import OutputGrid
from pstm.io.atomic import atomic_output

if TYPE_CHECKING:
    import zarr

#: Figures of the assembled image (``results/qc/<name>.png``, :func:`write_qc`).
IMAGE_FIGURES = ("inline", "crossline", "timeslice", "fold", "gathers")
#: The figure of the velocity used (:func:`write_velocity_qc`): it needs only the velocity
#: stage, so the workflow draws it before the migration (a wrong velocity shows up before
#: any tile job) and redraws it only when the velocity, the grid or the QC settings change.
VELOCITY_FIGURE = "velocity"
#: Smallest colour span (m/s) of the velocity figure: a field varying by less is drawn
#: around its mean, so that it does not look like a full-scale gradient.
VELOCITY_QC_MIN_SPAN_MPS = 100.0
#: Figure names (``results/qc/<name>.png``), in the order the report shows them.
QC_FIGURES = (*IMAGE_FIGURES, VELOCITY_FIGURE)


def read_array(root: zarr.Group, name: str) -> NDArray[Any]:
    """A whole array of an image group, as numpy."""
    import zarr

    arr = root[name]
    if not isinstance(arr, zarr.Array):
        raise TypeError(f"{name} in {root.store} is not an array")
    return np.asarray(arr[...])


def qc_indices(nil: int, nxl: int, t: NDArray[Any], qc: QcConfig) -> tuple[int, int, int]:
    """The QC bin's inline and crossline index and the time slice's sample index (the
    grid's middle unless the ``qc`` settings name them)."""
    nt = len(t)
    i = nil // 2 if qc.inline_index is None else qc.inline_index
    j = nxl // 2 if qc.crossline_index is None else qc.crossline_index
    k = (
        nt // 2
        if qc.time_s is None
        else int(np.clip(round((qc.time_s - t[0]) / (t[1] - t[0])), 0, nt - 1))
    )
    return i, j, k


def _span(a: NDArray[Any]) -> tuple[float, float]:
    """Edges of the cells centred on the regular axis ``a`` (an image's extent): half a step
    beyond its ends; a single value (a 2D line's one crossline) gets a step of 1."""
    step = float(a[1] - a[0]) if len(a) > 1 else 1.0
    return float(a[0]) - step / 2.0, float(a[-1]) + step / 2.0


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_qc(image_zarr: str | Path, qc: QcConfig, out_dir: str | Path) -> list[Path]:
    """The :data:`IMAGE_FIGURES` of an assembled image, written atomically."""
    import zarr  # here, not at the top: the Snakefile imports this module's names

    plt = _pyplot()
    root = zarr.open_group(str(image_zarr), mode="r")
    stack, fold = read_array(root, "image"), read_array(root, "fold")
    inl, xl, t = read_array(root, "inline"), read_array(root, "crossline"), read_array(root, "time")
    nil, nxl, nt = stack.shape
    i, j, k = qc_indices(nil, nxl, t, qc)
    clip = float(np.percentile(np.abs(stack), qc.clip_percentile)) or 1.0
    panels: dict[
        str, tuple[NDArray[Any], str, tuple[float, float, float, float], str, str, str]
    ] = {
        "inline": (
            stack[i].T,
            f"inline {inl[i]}",
            (*_span(xl), *_span(t)[::-1]),
            "crossline",
            "time (s)",
            "gray",
        ),
        "crossline": (
            stack[:, j].T,
            f"crossline {xl[j]}" + (" (the 2D line)" if nxl == 1 else ""),
            (*_span(inl), *_span(t)[::-1]),
            "inline",
            "time (s)",
            "gray",
        ),
        "timeslice": (
            stack[:, :, k].T,
            f"time slice {t[k]:.3f} s",
            (*_span(inl), *_span(xl)),
            "inline",
            "crossline",
            "gray",
        ),
        "fold": (
            fold[:, :, k].T,
            f"fold at {t[k]:.3f} s",
            (*_span(inl), *_span(xl)),
            "inline",
            "crossline",
            "viridis",
        ),
    }
    gathers = np.asarray(root["gathers"][:, i, j, :])  # type: ignore[index]
    classes = read_array(root, "offset_class")
    # one column per class (classes may be unequal): ticks name each class centre
    class_labels = ["all offsets"] if np.isnan(classes).any() else [f"{c:g}" for c in classes]
    panels["gathers"] = (
        gathers.T,
        f"offset-class gathers at inline {inl[i]}, crossline {xl[j]}",
        (-0.5, len(classes) - 0.5, *_span(t)[::-1]),
        "offset class centre (m)",
        "time (s)",
        "gray",
    )
    # Each class holds part of the stack: the gathers get their own clip.
    clips = dict.fromkeys(IMAGE_FIGURES, clip)
    gathers_clip = float(np.percentile(np.abs(gathers), qc.clip_percentile))
    clips["gathers"] = gathers_clip if gathers_clip > 0 else 1.0  # all-zero gathers
    out_dir = Path(out_dir)
    written = []
    for name in IMAGE_FIGURES:
        data, title, extent, xlabel, ylabel, cmap = panels[name]
        fig, ax = plt.subplots(figsize=(6, 4.5))
        vmin, vmax = (-clips[name], clips[name]) if cmap == "gray" else (None, None)
        origin: Literal["upper", "lower"] = "upper" if "time" in ylabel else "lower"
        im = ax.imshow(
            data, aspect="auto", cmap=cmap, extent=extent, origin=origin, vmin=vmin, vmax=vmax
        )
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        if name == "gathers":
            ax.set_xticks(range(len(class_labels)), class_labels)
        fig.colorbar(im, ax=ax)
        path = out_dir / f"{name}.png"
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=qc.dpi, format="png")
        plt.close(fig)
        written.append(path)
    return written


def write_velocity_qc(
    vrms_npy: str | Path,
    vrms_info_json: str | Path,
    grid: OutputGrid,
    qc: QcConfig,
    path: str | Path,
) -> Path:
    """The v_rms used (``results/velocity``, on ``grid``): an inline section, a time slice
    (with any analysis locations) and the v_rms(t) column at the QC bin between the
    grid-wide minimum and maximum; written atomically."""
    plt = _pyplot()
    vrms = np.load(vrms_npy, mmap_mode="r")
    info = json.loads(Path(vrms_info_json).read_text())
    inl, xl, t = grid.inlines, grid.crosslines, grid.times
    i, j, k = qc_indices(grid.nil, grid.nxl, t, qc)
    fig, (ax_il, ax_ts, ax_col) = plt.subplots(1, 3, figsize=(13, 4.5))
    title = f"v_rms used ({info['kind']}, {info['type']}, smoothing {info['smoothing']})"
    fig.suptitle(title)
    vmin, vmax = float(vrms.min()), float(vrms.max())
    # a colour span of at least VELOCITY_QC_MIN_SPAN_MPS: a nearly constant field must not
    # look like a full gradient
    pad = max(0.0, VELOCITY_QC_MIN_SPAN_MPS - (vmax - vmin)) / 2.0
    vmin, vmax = vmin - pad, vmax + pad
    im = ax_il.imshow(
        np.asarray(vrms[i]).T,
        aspect="auto",
        cmap="jet",
        extent=(*_span(xl), *_span(t)[::-1]),
        vmin=vmin,
        vmax=vmax,
    )
    ax_il.set(title=f"inline {inl[i]}", xlabel="crossline", ylabel="time (s)")
    ax_ts.imshow(
        np.asarray(vrms[:, :, k]).T,
        aspect="auto",
        cmap="jet",
        extent=(*_span(inl), *_span(xl)),
        origin="lower",
        vmin=vmin,
        vmax=vmax,
    )
    locations = np.asarray(info["locations_il_xl"], dtype=np.float64).reshape(-1, 2)
    if len(locations):
        ax_ts.plot(locations[:, 0], locations[:, 1], "k^", label="analysis locations")
        ax_ts.legend(loc="upper right", fontsize="small")
    ax_ts.set(title=f"time slice {t[k]:.3f} s", xlabel="inline", ylabel="crossline")
    flat = np.asarray(vrms).reshape(-1, vrms.shape[-1])
    ax_col.fill_betweenx(t, flat.min(axis=0), flat.max(axis=0), color="0.85", label="grid range")
    ax_col.plot(np.asarray(vrms[i, j]), t, "b", label=f"inline {inl[i]}, crossline {xl[j]}")
    ax_col.set(
        title="v_rms(t)", xlabel="v_rms (m/s)", ylabel="time (s)", ylim=(t[-1], t[0]),
        xlim=(vmin, vmax),
    )  # fmt: skip
    ax_col.ticklabel_format(axis="x", useOffset=False)
    ax_col.legend(loc="lower left", fontsize="small")
    bar = fig.colorbar(im, ax=[ax_il, ax_ts], label="v_rms (m/s)")
    bar.formatter.set_useOffset(False)  # m/s as they are, no "+1.8e3" offset
    bar.update_ticks()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=qc.dpi, format="png")
    plt.close(fig)
    return Path(path)
