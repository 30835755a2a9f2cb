"""Which backups a schedule keeps: the newest N, or GFS-style the newest backup of each of the
last D days and of each of the last W ISO weeks that have one (the newest backup always stays)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from paas_svc.errors import InvalidInput


@dataclass(frozen=True)
class RetentionPolicy:
    keep_last: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None

    @property
    def keeps_everything(self) -> bool:
        return self.keep_last is None and self.keep_daily is None and self.keep_weekly is None

    def describe(self) -> str:
        if self.keep_last is not None:
            return f"last {self.keep_last}"
        parts = []
        if self.keep_daily is not None:
            parts.append(f"{self.keep_daily} daily")
        if self.keep_weekly is not None:
            parts.append(f"{self.keep_weekly} weekly")
        return ", ".join(parts) or "all"


def make_policy(keep: int | None, keep_daily: int | None, keep_weekly: int | None) -> RetentionPolicy:
    if keep is not None and (keep_daily is not None or keep_weekly is not None):
        raise InvalidInput("Give either --keep N or --keep-daily/--keep-weekly, not both.")
    for name, value in (("--keep", keep), ("--keep-daily", keep_daily), ("--keep-weekly", keep_weekly)):
        if value is not None and value < 1:
            raise InvalidInput(f"{name} must be at least 1, not {value}.")
    return RetentionPolicy(keep, keep_daily, keep_weekly)


def backups_to_keep(policy: RetentionPolicy, backups: Sequence[tuple[int, datetime]]) -> set[int]:
    """Ids (of (id, taken-at) pairs of successful backups) the policy keeps."""
    newest_first = sorted(backups, key=lambda item: (item[1], item[0]), reverse=True)
    if policy.keeps_everything:
        return {backup_id for backup_id, _ in newest_first}
    keep: set[int] = {newest_first[0][0]} if newest_first else set()
    if policy.keep_last is not None:
        keep.update(backup_id for backup_id, _ in newest_first[:policy.keep_last])
    if policy.keep_daily is not None:
        keep.update(_newest_per_period(newest_first, lambda when: when.date(), policy.keep_daily))
    if policy.keep_weekly is not None:
        keep.update(_newest_per_period(newest_first, lambda when: when.isocalendar()[:2], policy.keep_weekly))
    return keep


def _newest_per_period(newest_first, period_of, count: int) -> list[int]:
    kept, seen = [], set()
    for backup_id, when in newest_first:
        period = period_of(when)
        if period in seen:
            continue
        seen.add(period)
        kept.append(backup_id)
        if len(kept) == count:
            break
    return kept
