"""Response models: version, users, tokens, ACL entries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from pbsclient.models.base import _bool, _expire, _extra, _extra_field, _obj, _opt_int, _opt_str, _str


@dataclass(frozen=True)
class VersionInfo:
    """``GET /version``: e.g. version "4.2", release "3"."""

    version: str
    release: str
    repoid: str
    extra: Mapping[str, Any] = _extra_field()

    _KNOWN = frozenset({"version", "release", "repoid"})

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        return cls(
            version=_str(d, "version"),
            release=str(d.get("release", "")),
            repoid=str(d.get("repoid", "")),
            extra=_extra(d, cls._KNOWN),
        )

    @property
    def version_tuple(self) -> tuple[int, ...]:
        """(major, minor, release) as integers, for feature gates; non-numeric parts are 0."""
        parts = [*self.version.split("."), self.release]
        return tuple(int(part) if part.isdigit() else 0 for part in parts if part != "")


@dataclass(frozen=True)
class Token:
    """An API token's metadata (its secret is never readable)."""

    tokenid: str
    token_name: str
    comment: str | None = None
    enable: bool = True
    expire: int | None = None  # epoch; None = never
    extra: Mapping[str, Any] = _extra_field()

    _KNOWN = frozenset({"tokenid", "token-name", "comment", "enable", "expire"})

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        tokenid = _str(d, "tokenid")
        return cls(
            tokenid=tokenid,
            token_name=_opt_str(d, "token-name") or tokenid.rsplit("!", 1)[-1],
            comment=_opt_str(d, "comment"),
            enable=_bool(d, "enable", True),
            expire=_expire(d),
            extra=_extra(d, cls._KNOWN),
        )

    @property
    def userid(self) -> str:
        return self.tokenid.rsplit("!", 1)[0]


@dataclass(frozen=True)
class TokenSecret:
    """A new token's id and secret, as ``POST .../token/{name}`` returns it (once)."""

    tokenid: str
    value: str = field(repr=False)

    def __repr__(self) -> str:  # the secret must never reach logs or tracebacks
        return f"TokenSecret(tokenid={self.tokenid!r}, value='***')"

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        return cls(tokenid=_str(d, "tokenid"), value=_str(d, "value"))


@dataclass(frozen=True)
class User:
    """A PBS user. ``tokens`` is filled only by ``user_list(include_tokens=True)``."""

    userid: str
    comment: str | None = None
    enable: bool = True
    expire: int | None = None  # epoch; None = never
    firstname: str | None = None
    lastname: str | None = None
    email: str | None = None
    tokens: tuple[Token, ...] = ()
    totp_locked: bool = False
    tfa_locked_until: int | None = None
    extra: Mapping[str, Any] = _extra_field()

    _KNOWN = frozenset(
        {
            "userid",
            "comment",
            "enable",
            "expire",
            "firstname",
            "lastname",
            "email",
            "tokens",
            "totp-locked",
            "tfa-locked-until",
        }
    )

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        return cls(
            userid=_str(d, "userid"),
            comment=_opt_str(d, "comment"),
            enable=_bool(d, "enable", True),
            expire=_expire(d),
            firstname=_opt_str(d, "firstname"),
            lastname=_opt_str(d, "lastname"),
            email=_opt_str(d, "email"),
            tokens=tuple(Token.from_api(t) for t in d.get("tokens") or ()),
            totp_locked=_bool(d, "totp-locked", False),
            tfa_locked_until=_opt_int(d, "tfa-locked-until"),
            extra=_extra(d, cls._KNOWN),
        )

    @property
    def realm(self) -> str:
        return self.userid.rsplit("@", 1)[-1]


@dataclass(frozen=True)
class AclEntry:
    """One ACL entry. ``ugid`` is a user id, token id or group; ``ugid_type`` is
    "user" for users and tokens alike, "group" for groups."""

    path: str
    ugid: str
    ugid_type: str
    propagate: bool
    roleid: str
    extra: Mapping[str, Any] = _extra_field()

    _KNOWN = frozenset({"path", "ugid", "ugid_type", "propagate", "roleid"})

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        return cls(
            path=_str(d, "path"),
            ugid=_str(d, "ugid"),
            ugid_type=str(d.get("ugid_type", "user")),
            propagate=_bool(d, "propagate", True),
            roleid=_str(d, "roleid"),
            extra=_extra(d, cls._KNOWN),
        )

    @property
    def is_token(self) -> bool:
        return "!" in self.ugid
