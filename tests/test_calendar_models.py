"""Validation of the business calendar shapes (models/calendars.py): errors name the field they are about."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from pydantic import ValidationError

from models.calendars import Absence, BusinessCalendarSpec, Closure, WeeklyHours


def utc(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


def error_locations(error: pytest.ExceptionInfo[ValidationError]) -> list[tuple[int | str, ...]]:
    return [e["loc"] for e in error.value.errors()]


class TestValidation:
    def test_overlapping_intervals_name_the_weekday(self) -> None:
        overlapping = {"tue": [("11:00", "13:00"), ("09:00", "12:00")]}
        with pytest.raises(
            ValidationError, match=r"tue: intervals 09:00–12:00 and 11:00–13:00 overlap"
        ) as error:
            BusinessCalendarSpec(time_zone="Europe/Berlin", weekly_hours=overlapping)
        assert error_locations(error) == [("weekly_hours", "tue")]

    def test_an_interval_must_open_before_it_closes(self) -> None:
        with pytest.raises(ValidationError, match="fri: interval 17:00–09:00 must open before") as error:
            WeeklyHours(fri=[("17:00", "09:00")])
        assert error_locations(error) == [("fri",)]

    def test_hours_come_back_sorted_with_midnight_as_end_of_day(self) -> None:
        hours = WeeklyHours(sat=[("18:00", "24:00"), ("08:00", "12:00")], sun=[("00:00", "00:00")])
        assert hours.sat == ((time(8), time(12)), (time(18), time(0)))
        assert hours.model_dump(mode="json")["sun"] == [["00:00:00", "00:00:00"]]
        with pytest.raises(ValidationError, match="leave out the UTC offset"):
            WeeklyHours(mon=[("09:00+01:00", "17:00")])

    @pytest.mark.parametrize(
        ("fields", "location", "message"),
        [
            ({"time_zone": "Mars/Olympus"}, ("time_zone",), "unknown time zone"),
            ({"country": "DE", "subdivision": "XX"}, ("subdivision",), "unknown subdivision 'XX' of DE"),
            ({"subdivision": "BE"}, ("subdivision",), "needs a country"),
            ({"country": "XX"}, ("country",), "no public holidays are known"),
            ({"country": "Germany"}, ("country",), "not an ISO 3166-1 alpha-2"),
        ],
    )
    def test_spec_errors_carry_the_field(
        self, fields: dict[str, str], location: tuple[str], message: str
    ) -> None:
        with pytest.raises(ValidationError, match=message) as error:
            BusinessCalendarSpec(**{"time_zone": "Europe/Berlin", "weekly_hours": {}, **fields})
        assert error_locations(error) == [location]

    def test_codes_are_normalised(self) -> None:
        spec = BusinessCalendarSpec(
            time_zone="Europe/Berlin", weekly_hours={}, country="de", subdivision="be"
        )
        assert (spec.country, spec.subdivision) == ("DE", "BE")

    def test_closures_and_absences_must_not_run_backwards(self) -> None:
        with pytest.raises(ValidationError, match="before it starts"):
            Closure(start=date(2025, 1, 2), end=date(2025, 1, 1))
        with pytest.raises(ValidationError, match="must end after it starts"):
            Absence(start=utc(2025, 1, 2), end=utc(2025, 1, 1))
        with pytest.raises(ValidationError, match="timezone"):
            Absence(start=datetime(2025, 1, 1), end=utc(2025, 1, 2))
