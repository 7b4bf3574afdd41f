"""The one table of SEG-Y trace-header words pstm interprets, with their byte positions.

:class:`HeaderWord` gives each canonical word its SEG-Y rev1/rev2 standard byte (1-based,
as in the standard and in ``segyio.TraceField``). ``input.segy.header_bytes`` in the config
overrides any of them; the defaults there are taken from this table. Every other header
word is kept as is, named after ``segyio.TraceField`` (:data:`ALL_WORDS`).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import segyio
from numpy.typing import NDArray


class HeaderWord(IntEnum):
    """Canonical trace-header words and their SEG-Y rev1/rev2 default byte positions.

    The lower-case member name is both the config key (``input.segy.header_bytes``) and the
    Parquet column pstm writes (coordinates in metres after the coordinate scalar).
    """

    SIGNED_OFFSET = 37  # source-receiver distance, signed, unscaled
    COORDINATE_SCALAR = 71  # positive: multiply, negative: divide, 0: 1
    SOURCE_X = 73
    SOURCE_Y = 77
    RECEIVER_X = 81  # "group X"
    RECEIVER_Y = 85
    CDP_X = 181
    CDP_Y = 185
    INLINE = 189
    CROSSLINE = 193

    @property
    def key(self) -> str:
        """Config key and Parquet column name."""
        return self.name.lower()


#: Words multiplied by the coordinate scalar (byte 71) on import and export.
SCALED_WORDS: tuple[HeaderWord, ...] = (
    HeaderWord.SOURCE_X,
    HeaderWord.SOURCE_Y,
    HeaderWord.RECEIVER_X,
    HeaderWord.RECEIVER_Y,
    HeaderWord.CDP_X,
    HeaderWord.CDP_Y,
)

#: Every standard trace-header word: segyio name -> first byte. Imported files keep each
#: of them as an int column ``segy_<name>`` (nothing in the header is lost).
ALL_WORDS: dict[str, int] = dict(sorted(segyio.tracefield.keys.items(), key=lambda kv: kv[1]))

#: Prefix of the raw header-word columns in the Parquet table.
RAW_PREFIX = "segy_"

#: First bytes at which a header word starts (valid values of a byte override).
VALID_BYTES: frozenset[int] = frozenset(ALL_WORDS.values())


def raw_column(byte: int) -> str:
    """Parquet column of the raw header word starting at ``byte``."""
    names = [name for name, b in ALL_WORDS.items() if b == byte]
    if not names:
        raise ValueError(f"byte {byte} is not the first byte of a SEG-Y trace-header word")
    return RAW_PREFIX + names[0]


def apply_scalar(raw: NDArray[np.integer], scalar: NDArray[np.integer]) -> NDArray[np.float64]:
    """Header integers -> metres with the SEG-Y coordinate scalar of each trace: a positive
    scalar multiplies, a negative one divides (by division, so ``round(x * 100) / 100``
    comes back bit for bit), 0 means 1."""
    values = np.asarray(raw, dtype=np.float64)
    s = np.asarray(scalar, dtype=np.float64)
    out = values.copy()
    np.multiply(values, s, out=out, where=s > 0)
    np.divide(values, -s, out=out, where=s < 0)
    return out
