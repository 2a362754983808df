"""The ranking's weights are read at start: a bad file stops the district service, naming its
line and field."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from services.common.config import Settings
from services.district.app import create_app as district_app
from services.district.kpis.weights import DEFAULT_PATH, WeightsFileError
from tests.support import running


async def test_a_bad_weights_file_stops_the_start(settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "kpi_weights.csv"
    text = DEFAULT_PATH.read_text(encoding="utf-8").rstrip()
    bad.write_text(f"{text}\nrework_rate,10\n", encoding="utf-8")
    line = len(text.splitlines()) + 1
    with pytest.raises(WeightsFileError, match=rf"line {line} \(figure\): 'rework_rate' is not"):
        async with running(district_app(replace(settings, kpi_weights=bad))):
            pass
