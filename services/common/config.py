"""Settings read once from the environment (CITYOPS_*)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _env(name: str, default: str) -> str:
    return os.environ.get(f"CITYOPS_{name}", default)


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str = field(default_factory=lambda: _env("KAFKA_BOOTSTRAP", ""))
    database_url: str = field(default_factory=lambda: _env("DATABASE_URL", ""))
    district_code: str = field(default_factory=lambda: _env("DISTRICT_CODE", "310106"))
    http_host: str = field(default_factory=lambda: _env("HTTP_HOST", "127.0.0.1"))
    district_port: int = field(default_factory=lambda: int(_env("DISTRICT_PORT", "8080")))
    street_port: int = field(default_factory=lambda: int(_env("STREET_PORT", "8081")))
    hotspots_port: int = field(default_factory=lambda: int(_env("HOTSPOTS_PORT", "8082")))
    #: the hotspot counting and detection loops run inside the district service (1) or in
    #: their own process, `cityops hotspots` (0: what `cityops run` and compose do, so the
    #: detection rounds never hold up the district's intake)
    hotspots_in_district: bool = field(
        default_factory=lambda: _env("HOTSPOTS_IN_DISTRICT", "1") != "0"
    )
    #: the embedded broker answers a fetch only when this expires: keep it short there.
    fetch_max_wait_ms: int = field(default_factory=lambda: int(_env("FETCH_MAX_WAIT_MS", "100")))
    #: the broker delays a group join by about half of this: short for the embedded broker.
    session_timeout_ms: int = field(
        default_factory=lambda: int(_env("SESSION_TIMEOUT_MS", "10000"))
    )
    batch_max_records: int = field(default_factory=lambda: int(_env("BATCH_MAX_RECORDS", "2000")))
    outbox_batch: int = field(default_factory=lambda: int(_env("OUTBOX_BATCH", "2000")))
    #: partitions of one consumed batch handled concurrently, each in its own transaction
    intake_lanes: int = field(default_factory=lambda: int(_env("INTAKE_LANES", "2")))
    db_pool_size: int = field(default_factory=lambda: int(_env("DB_POOL_SIZE", "8")))
    phone_key: str = field(default_factory=lambda: _env("PHONE_KEY", ""))
    phone_key_file: str = field(
        default_factory=lambda: _env("PHONE_KEY_FILE", str(ROOT / ".cityops" / "phone.key"))
    )
    reference_dir: Path = field(
        default_factory=lambda: Path(_env("REFERENCE_DIR", str(ROOT / "deploy" / "reference")))
    )
    #: official street territories (GeoJSON); unset: generated from the street anchors.
    territory_geojson: Path | None = field(
        default_factory=lambda: Path(p) if (p := _env("TERRITORY_GEOJSON", "")) else None
    )
    #: the deadline policy (SLA table, office hours, warn fraction); unset: the reference
    #: directory's deadline_policy.csv
    deadline_policy: Path | None = field(
        default_factory=lambda: Path(p) if (p := _env("DEADLINE_POLICY", "")) else None
    )
    #: the KPI ranking's weights; unset: the reference directory's kpi_weights.csv
    kpi_weights: Path | None = field(
        default_factory=lambda: Path(p) if (p := _env("KPI_WEIGHTS", "")) else None
    )
    #: units the reference street platform serves; empty: every street and department.
    street_units: tuple[str, ...] = field(
        default_factory=lambda: tuple(u for u in _env("STREET_UNITS", "").split(",") if u)
    )
    #: 并案: a new report this close (metres; 0 turns merging off) to an open case of its
    #: category opened within the window (hours) joins that case.
    merge_radius_m: float = field(default_factory=lambda: float(_env("MERGE_RADIUS_M", "100")))
    merge_window_h: float = field(default_factory=lambda: float(_env("MERGE_WINDOW_H", "24")))
    #: not ours only when sure: a point outside the district boundary by more than this
    #: (metres) is not ours; nearer, it goes to the nearest street ("nearest") or to manual
    #: triage ("triage")
    not_ours_margin_m: float = field(
        default_factory=lambda: float(_env("NOT_OURS_MARGIN_M", "1000"))
    )
    near_edge: str = field(default_factory=lambda: _env("NEAR_EDGE", "nearest"))
    #: an action parked waiting for its case is dead-lettered (unknown_case) after this.
    parked_max_days: float = field(default_factory=lambda: float(_env("PARKED_MAX_DAYS", "7")))
    #: an API token's lifetime when `cityops token create` is not told (`--expires-in`):
    #: a duration (90d, 12h, 30m); `never` or 0: tokens do not expire
    token_expires_in: str = field(default_factory=lambda: _env("TOKEN_EXPIRES_IN", "90d"))
    #: requests a second one API token may make in one process (token bucket; 0: unlimited),
    #: and the burst it may make at once
    token_rate: float = field(default_factory=lambda: float(_env("TOKEN_RATE", "20")))
    token_burst: int = field(default_factory=lambda: int(_env("TOKEN_BURST", "100")))
    group_prefix: str = field(default_factory=lambda: _env("GROUP_PREFIX", "cityops"))
    log_level: str = field(default_factory=lambda: _env("LOG_LEVEL", "INFO"))
    instance: str = field(
        default_factory=lambda: _env("INSTANCE", f"{os.uname().nodename}-{os.getpid()}")
    )

    @property
    def deadline_policy_path(self) -> Path:
        return self.deadline_policy or self.reference_dir / "deadline_policy.csv"

    @property
    def kpi_weights_path(self) -> Path:
        return self.kpi_weights or self.reference_dir / "kpi_weights.csv"

    @property
    def center_unit(self) -> str:
        return f"{self.district_code}-CENTER"


_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def duration(text: str) -> timedelta | None:
    """`90d`, `12h`, `30m`, `45s`, `2w` (or `1d12h`); `never`, `0` or empty: None."""
    text = text.strip().lower()
    if text in ("", "0", "never", "none"):
        return None
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r} (e.g. 90d, 12h, 30m, never)")
    total = sum((timedelta(**{_UNITS[u]: int(n)}) for n, u in parts), timedelta())
    return total or None
