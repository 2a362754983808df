"""WorkCalendar: office hours on the Chinese government calendar (default 09–12, 13–17:30)."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.district.deadlines.workcal import WorkCalendar

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()


def at(day: str, hhmm: str = "00:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=SH)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def test_default_workday_is_seven_and_a_half_hours() -> None:
    assert CAL.workday_length == hours(7.5)


def test_across_a_weekend() -> None:
    # Fri 16:00–17:30 gives 1.5 h; Sat/Sun skipped; Mon 09:00 + 2.5 h = 11:30.
    assert CAL.add_working_time(at("2026-03-06", "16:00"), hours(4)) == at("2026-03-09", "11:30")


def test_spring_festival_2026_holiday_is_skipped() -> None:
    # chinese_calendar 2026: Feb 15 (Sun) – Feb 23 (Mon) off. Sat Feb 14 16:00: 1.5 h that
    # day (make-up workday), 6 h left; next workday Tue Feb 24: 3 h + 3 h → 16:00.
    assert not CAL.is_workday(date(2026, 2, 16))
    assert not CAL.is_workday(date(2026, 2, 23))
    start = at("2026-02-14", "16:00")
    assert CAL.add_working_days(start, 1) == at("2026-02-24", "16:00")


def test_make_up_saturday_counts_as_workday() -> None:
    # 调休: Sat Feb 14 and Sat Feb 28 2026 are working days. Fri Feb 13 16:00 + 7.5 h:
    # 1.5 h on Friday, then Sat 09–12 (3 h) and 13:00 + 3 h → Sat 16:00.
    assert CAL.is_workday(date(2026, 2, 14))
    assert CAL.is_workday(date(2026, 2, 28))
    assert not CAL.is_workday(date(2026, 3, 7))  # an ordinary Saturday
    assert CAL.add_working_days(at("2026-02-13", "16:00"), 1) == at("2026-02-14", "16:00")


@pytest.mark.parametrize(
    ("start", "delta", "expected"),
    [
        (at("2026-03-09", "07:00"), hours(1), at("2026-03-09", "10:00")),  # before: from 09:00
        (at("2026-03-09", "10:30"), hours(2), at("2026-03-09", "13:30")),  # 1.5 h + lunch + 0.5
        (at("2026-03-09", "12:20"), hours(1), at("2026-03-09", "14:00")),  # lunch: from 13:00
        (at("2026-03-09", "18:00"), hours(1), at("2026-03-10", "10:00")),  # after: next morning
        (at("2026-03-09", "11:00"), hours(1), at("2026-03-09", "12:00")),  # ends at period end
        (at("2026-03-07", "10:00"), hours(0), at("2026-03-09", "09:00")),  # Sat: Monday's start
    ],
)
def test_office_hours(start: datetime, delta: timedelta, expected: datetime) -> None:
    assert CAL.add_working_time(start, delta) == expected


def test_result_is_in_calendar_zone_for_any_input_offset() -> None:
    # 01:00 UTC is 09:00 in Shanghai; + 1 h → 10:00 +08:00.
    result = CAL.add_working_time(datetime(2026, 3, 9, 1, 0, tzinfo=UTC), hours(1))
    assert result == at("2026-03-09", "10:00")
    assert result.utcoffset() == hours(8)


def test_add_working_days_keeps_time_of_day() -> None:
    # Mon 10:00 + 5 × 7.5 h lands on the next Monday at 10:00 (no holidays in March).
    assert CAL.add_working_days(at("2026-03-09", "10:00"), 5) == at("2026-03-16", "10:00")


def test_long_span_uses_whole_days() -> None:
    # Mon 2026-03-09 09:00 + 200 WD ends at 17:30 of the 200th workday counting that Monday.
    workdays = [date(2026, 3, 9) + timedelta(days=i) for i in range(400)]
    target = [d for d in workdays if CAL.is_workday(d)][199]
    assert CAL.add_working_days(at("2026-03-09", "09:00"), 200) == at(target.isoformat(), "17:30")


def test_working_time_between() -> None:
    # Fri 16:00–17:30 (1.5 h) + Mon 09:00–11:30 (2.5 h) = 4 h; reversed is negative.
    a, b = at("2026-03-06", "16:00"), at("2026-03-09", "11:30")
    assert CAL.working_time_between(a, b) == hours(4)
    assert CAL.working_time_between(b, a) == -hours(4)
    assert CAL.working_time_between(at("2026-03-09"), at("2026-03-16")) == hours(37.5)
    lunch = CAL.working_time_between(at("2026-03-09", "12:10"), at("2026-03-09", "12:50"))
    assert lunch == hours(0)


def test_year_without_data_falls_back_to_monday_to_friday() -> None:
    seen: list[int] = []
    cal = WorkCalendar(on_fallback=seen.append)
    # 2027-01-01 is a Friday: a workday under the fallback (no holiday data).
    assert cal.is_workday(date(2027, 1, 1))
    assert not cal.is_workday(date(2027, 1, 2))
    # Fri 16:00: 1.5 h, then Mon Jan 4 09:00 + 2.5 h = 11:30.
    assert cal.add_working_time(at("2027-01-01", "16:00"), hours(4)) == at("2027-01-04", "11:30")
    assert seen == [2027]
    assert cal.fallback_years == {2027}


def test_year_with_data_does_not_fall_back() -> None:
    seen: list[int] = []
    cal = WorkCalendar(on_fallback=seen.append)
    cal.add_working_days(at("2026-03-09", "09:00"), 30)
    assert seen == []
    assert cal.fallback_years == set()


def test_custom_office_hours() -> None:
    cal = WorkCalendar(office_hours=((time(8, 30), time(17, 0)),))
    assert cal.workday_length == hours(8.5)
    # Mon 16:00: 1 h left that day, then Tue 08:30 + 1 h = 09:30.
    assert cal.add_working_time(at("2026-03-09", "16:00"), hours(2)) == at("2026-03-10", "09:30")


@pytest.mark.parametrize(
    "office_hours",
    [(), ((time(9), time(12)), (time(11), time(14))), ((time(12), time(9)),)],
)
def test_invalid_office_hours(office_hours: tuple[tuple[time, time], ...]) -> None:
    with pytest.raises(ValueError):
        WorkCalendar(office_hours=office_hours)


def test_naive_datetimes_rejected() -> None:
    naive = datetime(2026, 3, 9, 10, 0)
    with pytest.raises(ValueError):
        CAL.add_working_time(naive, hours(1))
    with pytest.raises(ValueError):
        CAL.add_working_days(naive, 1)
    with pytest.raises(ValueError):
        CAL.working_time_between(naive, at("2026-03-09"))


def test_negative_amounts_rejected() -> None:
    with pytest.raises(ValueError):
        CAL.add_working_time(at("2026-03-09"), -hours(1))
    with pytest.raises(ValueError):
        CAL.add_working_days(at("2026-03-09"), -1)


def test_a_pause_resumes_with_the_working_time_that_was_left() -> None:
    from services.district.deadlines.pause import resumed_deadline, resumed_start

    cal, sh = WorkCalendar(), ZoneInfo("Asia/Shanghai")
    fri_1000 = datetime(2026, 11, 27, 10, 0, tzinfo=sh)
    parked, resumed = fri_1000.replace(minute=30), datetime(2026, 12, 8, 10, 30, tzinfo=sh)
    deadline = datetime(2026, 11, 30, 10, 0, tzinfo=sh)  # Mon 10:00: 7 WH left at parking
    assert resumed_deadline(deadline, parked, resumed, cal, False) == datetime(
        2026, 12, 9, 10, 0, tzinfo=sh
    )
    assert resumed_deadline(fri_1000, parked, resumed, cal, False) == resumed  # none was left
    start = resumed_start(fri_1000, parked, resumed, cal, False)
    assert start == resumed.replace(hour=10, minute=0)  # half an hour had been spent
    natural = resumed_deadline(deadline, parked, resumed, cal, True)
    assert natural - resumed == deadline - parked
