"""Response models: namespaces and prune jobs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from pbsclient.models.base import _bool, _extra, _extra_field, _obj, _opt_int, _opt_str, _str


@dataclass(frozen=True)
class Namespace:
    """A namespace in a datastore; ``ns`` is "" for the root."""

    ns: str
    comment: str | None = None
    extra: Mapping[str, Any] = _extra_field()

    _KNOWN = frozenset({"ns", "comment"})

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        return cls(ns=str(d.get("ns", "")), comment=_opt_str(d, "comment"), extra=_extra(d, cls._KNOWN))

    @property
    def depth(self) -> int:
        return 0 if self.ns == "" else self.ns.count("/") + 1


_KEEP_FIELDS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")


@dataclass(frozen=True)
class PruneJob:
    """A prune job: retention for (store, ns) down to max_depth (None = full recursion).

    Used both as ``prune_job_create`` input and as what PBS returns. A job with
    no keep-* set keeps everything.
    """

    id: str
    store: str
    schedule: str
    ns: str | None = None
    max_depth: int | None = None
    keep_last: int | None = None
    keep_hourly: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None
    keep_yearly: int | None = None
    comment: str | None = None
    disable: bool = False
    extra: Mapping[str, Any] = _extra_field()

    _KNOWN = frozenset(
        {
            "id",
            "store",
            "schedule",
            "ns",
            "max-depth",
            "comment",
            "disable",
            *(name.replace("_", "-") for name in _KEEP_FIELDS),
        }
    )

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        return cls(
            id=_str(d, "id"),
            store=_str(d, "store"),
            schedule=_str(d, "schedule"),
            ns=_opt_str(d, "ns"),
            max_depth=_opt_int(d, "max-depth"),
            keep_last=_opt_int(d, "keep-last"),
            keep_hourly=_opt_int(d, "keep-hourly"),
            keep_daily=_opt_int(d, "keep-daily"),
            keep_weekly=_opt_int(d, "keep-weekly"),
            keep_monthly=_opt_int(d, "keep-monthly"),
            keep_yearly=_opt_int(d, "keep-yearly"),
            comment=_opt_str(d, "comment"),
            disable=_bool(d, "disable", False),
            extra=_extra(d, cls._KNOWN),
        )

    def to_api(self) -> dict[str, Any]:
        """Parameters for ``POST /config/prune`` (unset fields left out)."""
        params: dict[str, Any] = {"id": self.id, "store": self.store, "schedule": self.schedule}
        if self.ns:  # "" is the root namespace, which is PBS's default
            params["ns"] = self.ns
        if self.max_depth is not None:
            params["max-depth"] = self.max_depth
        for name in _KEEP_FIELDS:
            value = getattr(self, name)
            if value is not None:
                params[name.replace("_", "-")] = value
        if self.comment is not None:
            params["comment"] = self.comment
        if self.disable:
            params["disable"] = True
        return params

    @property
    def keep(self) -> dict[str, int]:
        """The keep-* options that are set, snake_case keys."""
        return {name: getattr(self, name) for name in _KEEP_FIELDS if getattr(self, name) is not None}
