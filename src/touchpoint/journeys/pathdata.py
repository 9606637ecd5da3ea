"""Journeys as attribution models read them: paths of channels with conversions, value and nulls.

:class:`PathData` holds many paths in flat numpy arrays (one array of channel ids for all touches
and an offsets array, like Arrow lists), so models stay vectorised on millions of paths. It is
built from Python lists, from an aggregated path file (ChannelAttribution's format: columns
``path``, ``conversions``, ``value``, ``nulls``, channels joined by a separator), or from the
warehouse (:mod:`touchpoint.journeys.touches`).

>>> pd_ = PathData.from_lists([["email", "direct"], ["direct"]], conversions=[1, 0], nulls=[0, 3])
>>> pd_.n_paths, pd_.channels
(2, ['direct', 'email'])
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from touchpoint.errors import InvalidInput, NotFound


@dataclass
class PathData:
    """Paths of channel ids with per-path ``conversions``, ``value`` and ``nulls`` (non-conversions).

    ``ages`` (optional, days before the conversion or the journey's end, one per touch) lets the
    time-decay model use real time; without it, decay counts steps.
    """

    channels: list[str]
    offsets: np.ndarray
    touches: np.ndarray
    conversions: np.ndarray
    value: np.ndarray
    nulls: np.ndarray
    ages: np.ndarray | None = None
    source: str = "python"
    _row: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_paths(self) -> int:
        return int(len(self.offsets) - 1)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def row_of_touch(self) -> np.ndarray:
        """For every touch, the index of its path."""
        if self._row is None:
            self._row = np.repeat(np.arange(self.n_paths), self.lengths)
        return self._row

    @property
    def position(self) -> np.ndarray:
        """For every touch, its 0-based position in its path."""
        return np.arange(len(self.touches)) - self.offsets[:-1][self.row_of_touch]

    def reweighted(self, conversions: np.ndarray, nulls: np.ndarray) -> PathData:
        """The same paths with other counts (value per conversion kept): used by the bootstrap."""
        with np.errstate(divide="ignore", invalid="ignore"):
            per = np.where(self.conversions > 0, self.value / self.conversions, 0.0)
        return replace(self, conversions=conversions, value=per * conversions, nulls=nulls, _row=self._row)

    def path_strings(self, sep: str = " > ") -> list[str]:
        names = np.asarray(self.channels, dtype=object)
        return [sep.join(names[self.touches[a:b]]) for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True)]

    @classmethod
    def from_lists(
        cls,
        paths: Sequence[Sequence[str]],
        *,
        conversions: Sequence[float] | None = None,
        value: Sequence[float] | None = None,
        nulls: Sequence[float] | None = None,
        ages: Sequence[Sequence[float]] | None = None,
    ) -> PathData:
        """From lists of channel names (one list per path)."""
        flat = [str(c) for p in paths for c in p]
        arr = pa.array(flat, pa.string())
        lengths = [len(p) for p in paths]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        n = len(paths)
        conv = np.asarray(conversions if conversions is not None else [1.0] * n, dtype=np.float64)
        val = np.asarray(value if value is not None else [0.0] * n, dtype=np.float64)
        nul = np.asarray(nulls if nulls is not None else [0.0] * n, dtype=np.float64)
        age_arr = np.asarray([a for p in ages for a in p], dtype=np.float64) if ages is not None else None
        return cls._build(arr, offsets, conv, val, nul, age_arr, "python")

    @classmethod
    def _build(
        cls,
        flat: pa.Array,
        offsets: np.ndarray,
        conv: np.ndarray,
        val: np.ndarray,
        nul: np.ndarray,
        ages: np.ndarray | None,
        source: str,
    ) -> PathData:
        n = len(offsets) - 1
        for name, arr in (("conversions", conv), ("value", val), ("nulls", nul)):
            if len(arr) != n:
                raise InvalidInput(f"{name} has {len(arr)} entries for {n} paths", hint="give one per path")
            bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0))
            if len(bad):
                raise InvalidInput(
                    f"{name} of path {int(bad[0]) + 1} is {arr[bad[0]]!r}",
                    hint=f"{name} must be a finite number >= 0",
                )
        empty = np.flatnonzero(np.diff(offsets) == 0)
        if len(empty):
            raise InvalidInput(
                f"path {int(empty[0]) + 1} has no channels", hint="remove empty paths or give them a channel"
            )
        if ages is not None and len(ages) != len(flat):
            raise InvalidInput("ages must have one entry per touch", hint="give one age per channel in each path")
        encoded = pc.dictionary_encode(flat)
        raw_names = encoded.dictionary.to_pylist()
        if any(name is None or name == "" for name in raw_names) or encoded.indices.null_count:
            raise InvalidInput("a path has an empty channel name", hint="check the separator and the path text")
        order = np.argsort(np.asarray(raw_names, dtype=object))
        rank = np.empty(len(order), dtype=np.int32)
        rank[order] = np.arange(len(order), dtype=np.int32)
        touches = rank[encoded.indices.to_numpy(zero_copy_only=False)]
        channels = [raw_names[i] for i in order]
        return cls(channels, offsets.astype(np.int64), touches.astype(np.int32), conv, val, nul, ages, source)


def _delimiter(header: str) -> str:
    try:
        return csv.Sniffer().sniff(header, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def read_path_file(
    path: str | Path,
    *,
    sep: str = ">",
    path_column: str = "path",
    conversions_column: str = "conversions",
    value_column: str | None = "value",
    nulls_column: str | None = "nulls",
    delimiter: str | None = None,
) -> PathData:
    """Read an aggregated path file (CSV or Parquet) in ChannelAttribution's layout.

    Channels in ``path`` are joined by ``sep`` (spaces around them are ignored). ``value`` and
    ``nulls`` are optional columns; a missing one counts as zero. The CSV delimiter is detected
    (``,`` ``;`` tab ``|``) unless given.
    """
    p = Path(path)
    if not p.exists():
        raise NotFound(f"path file {str(p)!r} does not exist", hint="check the file name")
    if not sep:
        raise InvalidInput("the path separator is empty", hint="pass --sep, e.g. '>' or ';'")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            table = pq.read_table(p)
        else:
            import pyarrow.csv as pcsv

            with p.open("r", encoding="utf-8", errors="replace") as fh:
                header = fh.readline()
            delim = delimiter or _delimiter(header)
            if delim == sep:
                raise InvalidInput(
                    f"the CSV delimiter and the path separator are both {sep!r}",
                    hint="quote the path column or use another --sep",
                )
            table = pcsv.read_csv(
                p,
                parse_options=pcsv.ParseOptions(delimiter=delim),
                convert_options=pcsv.ConvertOptions(column_types={path_column: pa.string()}),
            )
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read path file {str(p)!r}: {exc}", hint="give a CSV or Parquet file") from None
    return from_table(
        table,
        sep=sep,
        path_column=path_column,
        conversions_column=conversions_column,
        value_column=value_column,
        nulls_column=nulls_column,
        source=str(p),
    )


def from_table(
    table: pa.Table,
    *,
    sep: str = ">",
    path_column: str = "path",
    conversions_column: str = "conversions",
    value_column: str | None = "value",
    nulls_column: str | None = "nulls",
    source: str = "table",
) -> PathData:
    """:class:`PathData` from an Arrow table with a path-string column and count columns."""
    cols = set(table.column_names)
    for needed in (path_column, conversions_column):
        if needed not in cols:
            raise InvalidInput(
                f"the path data has no column {needed!r} (columns: {', '.join(table.column_names)})",
                hint="name the columns path, conversions, value, nulls, or say which to use",
            )

    def numbers(name: str | None) -> np.ndarray:
        if name is None or name not in cols:
            return np.zeros(table.num_rows)
        col = table.column(name)
        try:
            col = pc.cast(col, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InvalidInput(f"column {name!r} is not numeric", hint="give counts and values as numbers") from None
        return np.nan_to_num(col.to_numpy(zero_copy_only=False), nan=0.0)

    text = pc.cast(table.column(path_column), pa.string()).combine_chunks()
    if text.null_count:
        first = int(np.flatnonzero(text.is_null().to_numpy(zero_copy_only=False))[0])
        raise InvalidInput(f"path {first + 1} is empty", hint="every row needs a path of channels")
    parts = pc.split_pattern(text, pattern=sep)
    flat = pc.utf8_trim_whitespace(parts.flatten())
    offsets = parts.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = offsets - offsets[0]
    # drop empty channel names produced by leading/trailing/doubled separators
    keep = pc.not_equal(flat, "").to_numpy(zero_copy_only=False)
    if not keep.all():
        counts = np.add.reduceat(keep.astype(np.int64), offsets[:-1]) if len(offsets) > 1 else np.array([])
        counts = np.where(np.diff(offsets) == 0, 0, counts)
        flat = flat.filter(pa.array(keep))
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return PathData._build(
        flat,
        offsets,
        numbers(conversions_column),
        numbers(value_column),
        numbers(nulls_column),
        None,
        source,
    )
