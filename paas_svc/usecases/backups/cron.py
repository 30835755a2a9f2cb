"""Schedule expressions: `daily`, `hourly`, or five cron fields (minute hour day-of-month month
day-of-week) with `*`, ranges `a-b`, steps `*/n` / `a-b/n` and lists `a,b`. Times are UTC.

Our own small parser (about 80 lines) rather than croniter: we need only `next time after T`,
and a dependency for that would be loaded by every `paas backup run-due`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from paas_svc.errors import InvalidInput

ALIASES = {"hourly": "0 * * * *", "daily": "0 3 * * *", "weekly": "0 3 * * 0", "@hourly": "0 * * * *",
           "@daily": "0 3 * * *", "@weekly": "0 3 * * 0"}
# (name, lowest, highest)
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
SEARCH_LIMIT = timedelta(days=366 * 5)  # covers every Feb 29; beyond that it never matches


@dataclass(frozen=True)
class CronSchedule:
    text: str  # as the user gave it (an alias or five fields)
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    def matches(self, when: datetime) -> bool:
        return (when.minute in self.minutes and when.hour in self.hours and when.month in self.months
                and self._day_matches(when))

    def next_after(self, when: datetime) -> datetime:
        """The first matching minute strictly after `when` (UTC)."""
        candidate = when.astimezone(timezone.utc).replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = candidate + SEARCH_LIMIT
        while candidate <= limit:
            if candidate.month not in self.months:
                candidate = (candidate.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
                continue
            if candidate.hour not in self.hours or not self._day_matches(candidate):
                candidate = candidate.replace(minute=0) + timedelta(hours=1)
                continue
            if candidate.minute in self.minutes:
                return candidate
            candidate += timedelta(minutes=1)
        raise InvalidInput(f"The schedule {self.text!r} never runs.")

    def _day_matches(self, when: datetime) -> bool:
        day_ok = when.day in self.days
        weekday_ok = (when.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return day_ok or weekday_ok  # cron's rule: when both are restricted, either may match
        return day_ok and weekday_ok


def parse_schedule(text: str) -> CronSchedule:
    expression = ALIASES.get(text.strip().lower(), text.strip())
    parts = expression.split()
    if len(parts) != 5:
        raise InvalidInput(f"Invalid schedule {text!r}: give daily, hourly, weekly or five cron fields.",
                           hint="E.g. --every daily, --every '30 2 * * *' (02:30 UTC), --every '0 */6 * * *'.")
    values = [_parse_field(part, name, low, high, text) for part, (name, low, high) in zip(parts, FIELDS)]
    weekdays = frozenset(day % 7 for day in values[4])  # 7 is Sunday too
    # Stored and shown as one line: any run of whitespace (a tab, a line break) becomes one space.
    schedule = CronSchedule(" ".join(text.split()), *map(frozenset, values[:4]), weekdays,
                            days_restricted=parts[2] != "*", weekdays_restricted=parts[4] != "*")
    schedule.next_after(datetime(2000, 1, 1, tzinfo=timezone.utc))  # refuse e.g. `0 0 31 2 *` now
    return schedule


def _parse_field(part: str, name: str, low: int, high: int, text: str) -> set[int]:
    chosen: set[int] = set()
    for item in part.split(","):
        base, slash, step_text = item.partition("/")
        step = _number(step_text, name, text) if slash else 1
        if step < 1:
            raise InvalidInput(f"Invalid schedule {text!r}: the step in the {name} field must be at least 1.")
        if base == "*":
            start, end = low, high if name != "day of week" else 6
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _number(first, name, text), _number(last, name, text)
        else:
            start = _number(base, name, text)
            end = high if slash else start
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise InvalidInput(f"Invalid schedule {text!r}: {item!r} is outside the {name} field's {low}-{high}.")
        chosen.update(range(start, end + 1, step))
    return chosen


def _number(value: str, name: str, text: str) -> int:
    if not value.isdigit():
        raise InvalidInput(f"Invalid schedule {text!r}: {value!r} in the {name} field is not a number.",
                           hint="Each field is *, a number, a range a-b, a step */n or a-b/n, or a list of them with commas.")
    return int(value)
