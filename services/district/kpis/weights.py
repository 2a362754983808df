"""The ranking's weights read from their file (`deploy/reference/kpi_weights.csv`).

One weight a line, `figure,weight`: a figure of ranking.RANKABLE (a KPI where more is better,
or `volume`), and a weight
(a number >= 0; they need not add up to 100). `#` lines and blank lines are comments.
Anything wrong stops the start with a `WeightsFileError` naming the file, the line and the
field."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from services.common.config import ROOT
from services.district.kpis.ranking import RANKABLE

DEFAULT_PATH = ROOT / "deploy" / "reference" / "kpi_weights.csv"
COLUMNS = ("figure", "weight")
FIGURES = RANKABLE


class WeightsFileError(ValueError):
    """A bad weights file: which line, which field, what is wrong."""

    def __init__(self, path: Path, line: int | None, column: str | None, problem: str) -> None:
        where = f"{path}" + (f", line {line}" if line is not None else "")
        what = f" ({column})" if column else ""
        super().__init__(f"KPI weights {where}{what}: {problem}")
        self.path, self.line, self.column = path, line, column


def load_weights(path: Path = DEFAULT_PATH) -> Mapping[str, float]:
    """The weights of the file at `path`, in the file's order."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WeightsFileError(path, None, None, f"cannot be read: {exc.strerror}") from None
    return parse_weights(text, path)


def parse_weights(text: str, path: Path = DEFAULT_PATH) -> Mapping[str, float]:
    weights: dict[str, float] = {}
    seen: dict[str, int] = {}
    header = False
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in next(csv.reader([raw]))]
        if not header:
            if tuple(cells) != COLUMNS:
                raise WeightsFileError(path, number, None, f"header must be {','.join(COLUMNS)}")
            header = True
            continue
        if len(cells) != len(COLUMNS):
            raise WeightsFileError(path, number, None, f"{len(cells)} fields, expected 2")
        figure, weight = cells
        if figure not in FIGURES:
            raise WeightsFileError(path, number, "figure", f"{figure!r} is not one of {FIGURES}")
        if figure in seen:
            raise WeightsFileError(path, number, "figure", f"repeats line {seen[figure]}")
        seen[figure] = number
        weights[figure] = _weight(path, number, weight)
    if not header:
        raise WeightsFileError(path, None, None, "no header line")
    if not any(weights.values()):
        raise WeightsFileError(path, None, None, "no figure has a weight above 0")
    return MappingProxyType(weights)


def _weight(path: Path, number: int, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise WeightsFileError(path, number, "weight", f"{text!r} is not a number >= 0")
    return value
