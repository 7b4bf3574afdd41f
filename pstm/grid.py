"""Output-grid geometry: bin centres, rotation, world <-> grid coordinates."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pstm.config import GridConfig


@dataclass(frozen=True)
class OutputGrid:
    """Geometry of the output image (see :class:`pstm.config.GridConfig` for conventions)."""

    ox: float
    oy: float
    rotation_deg: float
    dil: float
    dxl: float
    nil: int
    nxl: int
    t0: float
    dt: float
    nt: int
    first_inline: int = 1
    first_crossline: int = 1

    @classmethod
    def from_config(cls, g: GridConfig) -> OutputGrid:
        return cls(
            ox=g.origin_x_m,
            oy=g.origin_y_m,
            rotation_deg=g.rotation_deg,
            dil=g.inline_spacing_m,
            dxl=g.crossline_spacing_m,
            nil=g.n_inline,
            nxl=g.n_crossline,
            t0=g.t0_s,
            dt=g.dt_s,
            nt=g.nt,
            first_inline=g.first_inline,
            first_crossline=g.first_crossline,
        )

    @property
    def u_il(self) -> tuple[float, float]:
        r = math.radians(self.rotation_deg)
        return math.cos(r), math.sin(r)

    @property
    def u_xl(self) -> tuple[float, float]:
        r = math.radians(self.rotation_deg)
        return -math.sin(r), math.cos(r)

    @property
    def centre(self) -> tuple[float, float]:
        """World x, y of the grid's centre (the kernels' float32 origin for every tile)."""
        x, y = self.bin_xy(self.nil // 2, 1, self.nxl // 2, 1)
        return float(x[0, 0]), float(y[0, 0])

    @property
    def times(self) -> NDArray[np.float64]:
        return self.t0 + self.dt * np.arange(self.nt, dtype=np.float64)

    @property
    def inlines(self) -> NDArray[np.int64]:
        return self.first_inline + np.arange(self.nil)

    @property
    def crosslines(self) -> NDArray[np.int64]:
        return self.first_crossline + np.arange(self.nxl)

    def bin_xy(
        self, il0: int = 0, nil: int | None = None, xl0: int = 0, nxl: int | None = None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """World x, y of the bin centres of a (sub)grid, each shaped (nil, nxl)."""
        nil = self.nil - il0 if nil is None else nil
        nxl = self.nxl - xl0 if nxl is None else nxl
        i = (il0 + np.arange(nil, dtype=np.float64))[:, None] * self.dil
        j = (xl0 + np.arange(nxl, dtype=np.float64))[None, :] * self.dxl
        (ai, bi), (aj, bj) = self.u_il, self.u_xl
        return self.ox + i * ai + j * aj, self.oy + i * bi + j * bj

    def to_grid(
        self, x: NDArray[np.float64], y: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Fractional (inline index, crossline index) of world points."""
        dx, dy = (
            np.asarray(x, dtype=np.float64) - self.ox,
            np.asarray(y, dtype=np.float64) - self.oy,
        )
        (ai, bi), (aj, bj) = self.u_il, self.u_xl
        fil: NDArray[np.float64] = (dx * ai + dy * bi) / self.dil
        fxl: NDArray[np.float64] = (dx * aj + dy * bj) / self.dxl
        return fil, fxl

    def outside_m(
        self, fil: NDArray[np.float64], fxl: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """How far points at fractional grid indices (:meth:`to_grid`) lie beyond the bin
        centres' rectangle, along inlines and along crosslines (metres, 0 inside)."""
        du = np.maximum(np.maximum(-fil, fil - (self.nil - 1)), 0.0) * self.dil
        dv = np.maximum(np.maximum(-fxl, fxl - (self.nxl - 1)), 0.0) * self.dxl
        return du, dv
