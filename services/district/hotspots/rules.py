"""The detection thresholds, as data (deploy/reference/hotspot_thresholds.toml). Pure but for
`load`, which reads the file."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from contracts.hotspots import HotspotKind

FILE_NAME = "hotspot_thresholds.toml"
#: windows up to this long are counted from hourly buckets, longer ones from daily buckets
HOURLY_UP_TO_H = 48


@dataclass(frozen=True, slots=True)
class WindowRule:
    """When a key of `kind` is hot over a trailing window of `hours` (see the file's header)."""

    kind: HotspotKind
    hours: int
    min_count: int
    min_ratio: float
    p_open: float
    keep_min_count: int
    p_keep: float
    floor: float
    lookback_days: int
    min_history_h: float
    peer: bool
    min_days: int = 1

    @property
    def hourly(self) -> bool:
        return self.hours <= HOURLY_UP_TO_H


@dataclass(frozen=True, slots=True)
class Thresholds:
    windows: tuple[WindowRule, ...]
    every_s: float = 2.0
    min_update_s: float = 60.0
    sample_cases: int = 10

    def of(self, kind: HotspotKind) -> tuple[WindowRule, ...]:
        return tuple(w for w in self.windows if w.kind is kind)

    @property
    def longest_h(self) -> int:
        """The longest window with its lookback: how long daily buckets must be kept."""
        return max(w.hours + 24 * w.lookback_days for w in self.windows)


def parse(doc: dict[str, Any]) -> Thresholds:
    """Thresholds from the file's parsed TOML; ValueError names what is wrong."""
    known = {f.name for f in fields(WindowRule)}
    windows = []
    for raw in doc.get("window", []):
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown window settings: {', '.join(sorted(unknown))}")
        rule = WindowRule(**{**raw, "kind": HotspotKind(raw["kind"])})
        if rule.hours < 1 or rule.min_count < 1 or not 0 < rule.p_keep <= 1:
            raise ValueError(f"{rule.kind} {rule.hours} h: hours, min_count and p_keep")
        if rule.p_open > rule.p_keep or rule.keep_min_count > rule.min_count:
            raise ValueError(f"{rule.kind} {rule.hours} h: keeping must be easier than opening")
        windows.append(rule)
    if {w.kind for w in windows} != set(HotspotKind):
        raise ValueError("every kind needs at least one window")
    detector = doc.get("detector", {})
    return Thresholds(tuple(windows), **detector)


def load(reference_dir: Path) -> Thresholds:
    with (reference_dir / FILE_NAME).open("rb") as f:
        return parse(tomllib.load(f))
