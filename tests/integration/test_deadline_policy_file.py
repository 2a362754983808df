"""The deadline policy is read at start: a bad file stops the district service, naming its line
and field."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from services.common.config import Settings
from services.district.app import create_app as district_app
from services.district.deadlines.policy_file import DEFAULT_PATH, PolicyFileError
from tests.support import running


async def test_a_bad_policy_file_stops_the_start(settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "deadline_policy.csv"
    text = DEFAULT_PATH.read_text(encoding="utf-8").rstrip()
    bad.write_text(f"{text}\nresolve,*,grid,0000,1WD\n", encoding="utf-8")
    line = len(text.splitlines()) + 1
    with pytest.raises(PolicyFileError, match=rf"line {line} \(category\): unknown category"):
        async with running(district_app(replace(settings, deadline_policy=bad))):
            pass
