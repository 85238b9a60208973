"""systemd-style calendar events as PBS parses and evaluates them (proxmox-time).

``verify_calendar_event`` gives PBS's error text (``unable to parse calendar event
at '<rest>' - <nom error kind>``); ``next_event`` computes a schedule's next run the
way ``CalendarEvent::compute_next_event`` does, in UTC unless told otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# A date/time value: ("single", v) | ("range", start, end) | ("repeated", start, step, end|None)
Value = tuple[Any, ...]


@dataclass
class CalendarEvent:
    """The parsed event; empty lists mean "any"."""

    utc: bool = False
    days: set[int] = field(default_factory=set)  # 0 = Monday .. 6 = Sunday
    second: list[Value] = field(default_factory=list)
    minute: list[Value] = field(default_factory=list)
    hour: list[Value] = field(default_factory=list)
    day: list[Value] = field(default_factory=list)
    month: list[Value] = field(default_factory=list)
    year: list[Value] = field(default_factory=list)


class _NomError(Exception):
    """A nom parse error: the remaining input and the error kind (Debug-formatted)."""

    def __init__(self, rest: str, kind: str) -> None:
        super().__init__(rest, kind)
        self.rest = rest
        self.kind = kind


def _context(rest: str, what: str) -> _NomError:
    return _NomError(rest, f'Context("{what}")')


def _tag(i: str, tag: str) -> str:
    if not i.startswith(tag):
        raise _NomError(i, "Nom(Tag)")
    return i[len(tag) :]


def _digits(i: str) -> tuple[str, int]:
    end = 0
    while end < len(i) and i[end].isascii() and i[end].isdigit():
        end += 1
    if end == 0:
        raise _NomError(i, "Nom(Digit)")
    value = int(i[:end])
    if value > 2**32 - 1:  # str::parse::<u32> fails: a map_res error
        raise _NomError(i, "Nom(MapRes)")
    return i[end:], value


def _time_comp(max_value: int) -> Callable[[str], tuple[str, int]]:
    def parse(i: str) -> tuple[str, int]:
        rest, value = _digits(i)
        if value >= max_value:
            raise _context(rest, "time value too large")
        return rest, value

    return parse


def _opt(parser: Callable[[str], tuple[str, Any]], i: str) -> tuple[str, Any]:
    try:
        return parser(i)
    except _NomError:
        return i, None


def _separated_nonempty(parser: Callable[[str], tuple[str, Any]], i: str) -> tuple[str, list[Any]]:
    i, first = parser(i)
    values = [first]
    while True:
        try:
            nxt, value = parser(_tag(i, ","))
        except _NomError:
            return i, values
        values.append(value)
        i = nxt


def _date_time_comp(max_value: int) -> Callable[[str], tuple[str, Value]]:
    comp = _time_comp(max_value)

    def parse(i: str) -> tuple[str, Value]:
        i, value = comp(i)
        if i.startswith(".."):
            rest, end = _opt(comp, i[2:])
            if end is not None:
                if value > end:
                    raise _context(rest, "range start is bigger than end")
                if rest.startswith("/"):
                    rest, repeat = comp(rest[1:])
                    return rest, ("repeated", value, repeat, end)
                return rest, ("range", value, end)
        if i.startswith("/"):
            rest, repeat = comp(i[1:])
            return rest, ("repeated", value, repeat, None)
        return i, ("single", value)

    return parse


def _date_time_comp_list(start: int, max_value: int) -> Callable[[str], tuple[str, list[Value]]]:
    def parse(i: str) -> tuple[str, list[Value]]:
        if i.startswith("*"):
            rest = i[1:]
            if rest.startswith("/"):
                after, repeat = _time_comp(max_value)(rest[1:])
                if repeat > 0:
                    return after, [("repeated", start, repeat, None)]
            return rest, []
        return _separated_nonempty(_date_time_comp(max_value), i)

    return parse


def _time_spec(i: str) -> tuple[str, tuple[list[Value], list[Value], list[Value]]]:
    def hour_part(s: str) -> tuple[str, list[Value]]:
        s, hours = _date_time_comp_list(0, 24)(s)
        return _tag(s, ":"), hours

    def second_part(s: str) -> tuple[str, list[Value]]:
        return _date_time_comp_list(0, 60)(_tag(s, ":"))

    i, hours = _opt(hour_part, i)
    i, minutes = _date_time_comp_list(0, 60)(i)
    i, seconds = _opt(second_part, i)
    return i, (hours or [], minutes, seconds if seconds is not None else [("single", 0)])


def _date_spec(i: str) -> tuple[str, tuple[list[Value], list[Value], list[Value]]]:
    try:
        rest, year = _date_time_comp_list(0, 2200)(i)
        rest, month = _date_time_comp_list(1, 13)(_tag(rest, "-"))
        rest, day = _date_time_comp_list(1, 32)(_tag(rest, "-"))
        return rest, (year, month, day)
    except _NomError:
        pass
    try:
        rest, month = _date_time_comp_list(1, 13)(i)
        rest, day = _date_time_comp_list(1, 32)(_tag(rest, "-"))
        return rest, ([], month, day)
    except _NomError:
        raise _context(i, "invalid date spec") from None


_WEEKDAYS = {
    "monday": 0,
    "mon": 0,
    "tuesday": 1,
    "tue": 1,
    "wednesday": 2,
    "wed": 2,
    "thursday": 3,
    "thu": 3,
    "friday": 4,
    "fri": 4,
    "saturday": 5,
    "sat": 5,
    "sunday": 6,
    "sun": 6,
}
_ZERO: list[Value] = [("single", 0)]
_KEYWORDS: dict[str, dict[str, Any]] = {
    "minutely": {"second": _ZERO},
    "hourly": {"minute": _ZERO, "second": _ZERO},
    "daily": {"hour": _ZERO, "minute": _ZERO, "second": _ZERO},
    "weekly": {"hour": _ZERO, "minute": _ZERO, "second": _ZERO, "days": {0}},
    "monthly": {"hour": _ZERO, "minute": _ZERO, "second": _ZERO, "day": [("single", 1)]},
    "yearly": {"hour": _ZERO, "minute": _ZERO, "second": _ZERO, "day": [("single", 1)], "month": [("single", 1)]},
    "quarterly": {
        "hour": _ZERO,
        "minute": _ZERO,
        "second": _ZERO,
        "day": [("single", 1)],
        "month": [("single", 1), ("single", 4), ("single", 7), ("single", 10)],
    },
    "semiannually": {
        "hour": _ZERO,
        "minute": _ZERO,
        "second": _ZERO,
        "day": [("single", 1)],
        "month": [("single", 1), ("single", 7)],
    },
}
_KEYWORDS["annually"] = _KEYWORDS["yearly"]
_KEYWORDS["semi-annually"] = _KEYWORDS["semiannually"]


def _weekday(i: str) -> tuple[str, int]:
    end = 0
    while end < len(i) and i[end].isascii() and i[end].isalpha():
        end += 1
    if end == 0:
        raise _NomError(i, "Nom(Alpha)")
    text = i[:end]
    day = _WEEKDAYS.get(text.lower())
    if day is None:
        raise _context(text, "weekday")
    return i[end:], day


def _weekday_range(i: str) -> tuple[str, set[int]]:
    i, start = _weekday(i)
    if i.startswith(".."):
        rest, end = _opt(_weekday, i[2:])
        if end is not None:
            days = set(range(start, end + 1)) if start <= end else set(range(start, 7)) | set(range(end + 1))
            return rest, days
    return i, {start}


def _parse_incomplete(i: str) -> tuple[str, CalendarEvent]:
    event = CalendarEvent()
    has_spec = False
    if i.endswith("UTC"):
        event.utc = True
        i = i[:-3].rstrip(" ")
    if i[:1].isascii() and i[:1].isalpha():
        keyword = _KEYWORDS.get(i)
        if keyword is not None:
            return "", CalendarEvent(utc=event.utc, **keyword)
        i, ranges = _separated_nonempty(_weekday_range, i)
        for days in ranges:
            event.days |= days
        has_spec = True
        i = i.lstrip(" \t")
    rest, date = _opt(_date_spec, i)
    if date is not None:
        event.year, event.month, event.day = date
        has_spec = True
        i = rest.lstrip(" \t")
    rest, time_spec = _opt(_time_spec, i)
    if time_spec is not None:
        event.hour, event.minute, event.second = time_spec
        has_spec = True
        i = rest
    else:
        event.hour, event.minute, event.second = list(_ZERO), list(_ZERO), list(_ZERO)
    if not has_spec:
        raise _context(i, "date or time specification")
    return i, event


def parse_calendar_event(value: str) -> CalendarEvent:
    """Parse a complete calendar event or raise ValueError with PBS's text."""
    try:
        rest, event = _parse_incomplete(value)
        if rest:
            raise _NomError(rest, "Nom(Eof)")
    except _NomError as exc:
        raise ValueError(f"unable to parse calendar event at '{exc.rest}' - {exc.kind}") from None
    return event


def verify_calendar_event(value: str) -> None:
    """``proxmox_time::verify_calendar_event``."""
    parse_calendar_event(value)


# --- next event (CalendarEvent::compute_next_event), evaluated in UTC -------------------


def _contains(values: list[Value], value: int) -> bool:
    for spec in values:
        kind = spec[0]
        if kind == "single" and spec[1] == value:
            return True
        if kind == "range" and spec[1] <= value <= spec[2]:
            return True
        if kind == "repeated":
            start, step, end = spec[1], spec[2], spec[3]
            if value >= start:
                if step > 0:
                    if (value - start) % step == 0 and value <= (end if end is not None else 2**32):
                        return True
                elif start == value:
                    return True
    return False


def _find_next(values: list[Value], value: int) -> int | None:
    best: int | None = None
    for spec in values:
        candidate: int | None = None
        kind = spec[0]
        if kind == "single":
            candidate = spec[1] if spec[1] > value else None
        elif kind == "range":
            start, end = spec[1], spec[2]
            if value < start:
                candidate = start
            elif start <= value + 1 <= end:
                candidate = value + 1
        else:
            start, step, end = spec[1], spec[2], spec[3]
            if value < start:
                candidate = start
            elif step > 0:
                n = start + ((value - start + step) // step) * step
                candidate = n if end is None or n <= end else None
        if candidate is not None and (best is None or candidate < best):
            best = candidate
    return best


def next_event(event: CalendarEvent, last: int) -> int | None:
    """The first matching second after ``last`` (epoch), or None within 1000 steps."""
    t = datetime.fromtimestamp(last + 1, UTC)
    all_days = not event.days or len(event.days) == 7
    for _ in range(1001):
        if event.year and not _contains(event.year, t.year):
            n = _find_next(event.year, t.year)
            if n is None:
                return None
            t = datetime(n, 1, 1, tzinfo=UTC)
            continue
        if event.month and not _contains(event.month, t.month):
            n = _find_next(event.month, t.month)
            t = datetime(t.year, n, 1, tzinfo=UTC) if n is not None else datetime(t.year + 1, 1, 1, tzinfo=UTC)
            continue
        if event.day and not _contains(event.day, t.day):
            n = _find_next(event.day, t.day)
            start_of_day = datetime(t.year, t.month, t.day, tzinfo=UTC)
            if n is not None:
                t = start_of_day + timedelta(days=n - t.day)
            else:
                month = t.month % 12 + 1
                t = datetime(t.year + (t.month == 12), month, 1, tzinfo=UTC)
            continue
        if not all_days and t.weekday() not in event.days:
            later = [d for d in range(t.weekday() + 1, 7) if d in event.days]
            step = (later[0] - t.weekday()) if later else 7 - t.weekday()
            t = datetime(t.year, t.month, t.day, tzinfo=UTC) + timedelta(days=step)
            continue
        if event.hour and not _contains(event.hour, t.hour):
            n = _find_next(event.hour, t.hour)
            day = datetime(t.year, t.month, t.day, tzinfo=UTC)
            t = day + timedelta(hours=n) if n is not None else day + timedelta(days=1)
            continue
        if event.minute and not _contains(event.minute, t.minute):
            n = _find_next(event.minute, t.minute)
            hour = datetime(t.year, t.month, t.day, t.hour, tzinfo=UTC)
            t = hour + timedelta(minutes=n) if n is not None else hour + timedelta(hours=1)
            continue
        if event.second and not _contains(event.second, t.second):
            n = _find_next(event.second, t.second)
            minute = datetime(t.year, t.month, t.day, t.hour, t.minute, tzinfo=UTC)
            t = minute + timedelta(seconds=n) if n is not None else minute + timedelta(minutes=1)
            continue
        return int(t.timestamp())
    return None
