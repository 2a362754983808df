"""The areas reports are counted in: ~200 m grid cells (`cases.geo_cell`) and their 3 × 3
blocks, streets, and places (a point to ~10 m, or a numbered address). Pure."""

from __future__ import annotations

import math
import re
from enum import StrEnum

from services.district.intake.duplicates import CELL_DEG, cell_of

__all__ = ["CELL_DEG", "AreaKind", "block", "cell_bbox", "cell_of", "near", "place_of"]

_ROW = 1_000_000  # geo_cell = x * _ROW + y (deploy/migrations/025_nearby_cells.sql)
#: a place is a point to this many degrees (about 11 m north-south, 9.5 m east-west here:
#: one building's door; geocoded addresses give the same point every time)
PLACE_DEG = 0.0001
#: the share of a cell's area one place covers (1/400)
PLACE_SHARE = (PLACE_DEG / CELL_DEG) ** 2
#: two clusters of a category whose cells are this many cells apart or fewer are one
CLUSTER_REACH = 2
_NUMBERED = re.compile(r"\d+\s*(号|弄|支弄)")
_NOISE = re.compile(r"上海市|静安区|附近|旁边|对面|门口|\s+")


class AreaKind(StrEnum):
    CELL = "cell"
    STREET = "street"
    PLACE = "place"


def _xy(cell: int) -> tuple[int, int]:
    x, y = divmod(cell, _ROW)
    return x, y


def block(cell: int) -> list[int]:
    """The cell and its eight neighbours: every report within one cell's width of a report in
    `cell` (150 m is less than a cell) lies in this block."""
    x, y = _xy(cell)
    return [(x + dx) * _ROW + (y + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]


def near(a: int, b: int, reach: int = CLUSTER_REACH) -> bool:
    """Cells at most `reach` cells apart (their blocks overlap when reach is 2)."""
    (ax, ay), (bx, by) = _xy(a), _xy(b)
    return max(abs(ax - bx), abs(ay - by)) <= reach


def cell_bbox(cells: list[int]) -> tuple[float, float, float, float]:
    """[west, south, east, north] in WGS-84 degrees of the cells' extent."""
    xs, ys = zip(*map(_xy, cells), strict=True)
    return (
        round(min(xs) * CELL_DEG, 6),
        round(min(ys) * CELL_DEG, 6),
        round((max(xs) + 1) * CELL_DEG, 6),
        round((max(ys) + 1) * CELL_DEG, 6),
    )


def place_of(lon: float | None, lat: float | None, address: str) -> str | None:
    """The place a report is about: its point to ~10 m; without one, its address when that
    names a number (`南京西路1266号`), which pins one building; otherwise none."""
    if lon is not None and lat is not None:
        return f"p{math.floor(lon / PLACE_DEG)}:{math.floor(lat / PLACE_DEG)}"
    if _NUMBERED.search(address):
        return "a" + _NOISE.sub("", address)
    return None


def place_point(place: str) -> tuple[float, float] | None:
    """The centre of a point place (None for an address)."""
    if not place.startswith("p"):
        return None
    x, y = (int(v) for v in place[1:].split(":"))
    return (x + 0.5) * PLACE_DEG, (y + 0.5) * PLACE_DEG


def cell_centre(cell: int) -> tuple[float, float]:
    x, y = _xy(cell)
    return (x + 0.5) * CELL_DEG, (y + 0.5) * CELL_DEG
