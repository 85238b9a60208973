"""Validation functions refuse what PBS refuses, before any call, in words a person understands."""

from __future__ import annotations

import pytest

from pbsclient import validation as v
from pbsclient.validation import PbsValidationError


class TestUserid:
    @pytest.mark.parametrize("userid", ["acme@pbs", "root@pam", "john@example.com@pbs", "a@pb", "x_y-z.1@ldap-realm"])
    def test_it_accepts_valid_userids(self, userid: str) -> None:
        assert v.validate_userid(userid) == userid

    @pytest.mark.parametrize(
        ("userid", "fragment"),
        [
            ("acme", "has no realm"),
            ("@pbs", "empty name"),
            ("ac me@pbs", "whitespace"),
            ("ac:me@pbs", "':'"),
            ("ac/me@pbs", "'/'"),
            ("ac\x01me@pbs", "control character"),
            (".acme@pbs", "starts with '.'"),
            ("acme@p", "realm 'p'"),
            ("acme@" + "r" * 33, "2..32"),
            ("acme@-bad", "realm '-bad'"),
            ("a" * 61 + "@pbs", "65 characters; PBS allows 3..64"),
        ],
    )
    def test_it_refuses_invalid_userids_with_a_reason(self, userid: str, fragment: str) -> None:
        with pytest.raises(PbsValidationError, match=None) as info:
            v.validate_userid(userid)
        assert fragment in str(info.value)

    def test_validation_error_is_a_value_error(self) -> None:
        with pytest.raises(ValueError, match="realm"):
            v.validate_userid("nobody")


class TestTokens:
    def test_valid_token_ids_pass(self) -> None:
        assert v.validate_tokenid("acme@pbs!backup") == "acme@pbs!backup"
        assert v.validate_token_name("restore-2024.q1_a") == "restore-2024.q1_a"

    def test_token_id_longer_than_64_is_refused_with_the_length(self) -> None:
        tokenid = "a" * 55 + "@pbs!" + "restore-x"  # 69 characters
        with pytest.raises(PbsValidationError) as info:
            v.validate_tokenid(tokenid)
        assert str(info.value) == f"token id '{tokenid}' is {len(tokenid)} characters; PBS allows at most 64"

    @pytest.mark.parametrize("name", ["", "-x", ".x", "a b", "a!b", "a/b", "ä"])
    def test_bad_token_names_are_refused(self, name: str) -> None:
        with pytest.raises(PbsValidationError, match="token name"):
            v.validate_token_name(name)

    def test_token_id_without_bang_is_refused(self) -> None:
        with pytest.raises(PbsValidationError, match="has no '!'"):
            v.validate_tokenid("acme@pbs")

    def test_authid_accepts_users_and_tokens(self) -> None:
        assert v.validate_authid("acme@pbs") == "acme@pbs"
        assert v.validate_authid("acme@pbs!backup") == "acme@pbs!backup"
        with pytest.raises(PbsValidationError):
            v.validate_authid("acme@pbs!")


class TestNamespaces:
    def test_valid_namespaces(self) -> None:
        assert v.validate_namespace("") == ""
        assert v.validate_namespace("clients/acme") == "clients/acme"
        assert v.validate_namespace("/".join(["a"] * 7)) == "/".join(["a"] * 7)

    def test_eight_levels_are_refused(self) -> None:
        with pytest.raises(PbsValidationError, match="8 levels deep; PBS allows at most 7"):
            v.validate_namespace("/".join(["a"] * 8))

    def test_component_longer_than_32_is_refused(self) -> None:
        with pytest.raises(PbsValidationError, match="33 characters; PBS allows at most 32"):
            v.validate_namespace("clients/" + "x" * 33)

    @pytest.mark.parametrize("ns", ["/acme", "acme/", "a//b", "a/-b", "a/b c"])
    def test_malformed_namespaces_are_refused(self, ns: str) -> None:
        with pytest.raises(PbsValidationError, match="namespace"):
            v.validate_namespace(ns)

    def test_root_can_be_refused(self) -> None:
        with pytest.raises(PbsValidationError, match="root namespace"):
            v.validate_namespace("", allow_root=False)

    def test_total_length_limit(self) -> None:
        ns = "/".join(["x" * 32] * 7) + "y"  # 7 levels but one component of 33
        with pytest.raises(PbsValidationError):
            v.validate_namespace(ns)
        with pytest.raises(PbsValidationError, match="at most 256"):
            v.validate_namespace("x" * 257)

    def test_component(self) -> None:
        assert v.validate_namespace_component("acme") == "acme"
        with pytest.raises(PbsValidationError, match="namespace name"):
            v.validate_namespace_component("a/b")


class TestAclPaths:
    @pytest.mark.parametrize(
        "path",
        [
            "/",
            "/access",
            "/access/acl",
            "/access/users",
            "/access/openid/x",
            "/datastore",
            "/datastore/store1",
            "/datastore/store1/clients/acme",
            "/datastore/s1/a/b/c/d/e/f/g",
            "/remote",
            "/remote/r1/store/ns1",
            "/system",
            "/system/tasks",
            "/system/services/x",
            "/system/network/interfaces/eth0",
            "/system/network/dns",
            "/tape/pool/p1",
        ],
    )
    def test_shapes_pbs_accepts(self, path: str) -> None:
        assert v.validate_acl_path(path) == path

    @pytest.mark.parametrize(
        ("path", "fragment"),
        [
            ("", "empty"),
            ("datastore/s1", "malformed"),
            ("/datastore/s1/", "malformed"),
            ("/datastore/s1/ns/-x", "malformed"),
            ("/foo", "not one PBS accepts"),
            ("/access/tickets", "not one PBS accepts"),
            ("/datastore/s1/a/b/c/d/e/f/g/h", "at most 7 namespace levels"),
            ("/system/tasks/x", "not one PBS accepts"),
        ],
    )
    def test_paths_pbs_refuses(self, path: str, fragment: str) -> None:
        with pytest.raises(PbsValidationError) as info:
            v.validate_acl_path(path)
        assert fragment in str(info.value)

    def test_paths_over_128_characters_are_refused(self) -> None:
        path = "/datastore/store1/" + "/".join(["x" * 30] * 4)
        assert len(path) > 128
        with pytest.raises(PbsValidationError, match=r"PBS allows at most 128"):
            v.validate_acl_path(path)


class TestIdsAndFingerprints:
    def test_job_and_store_ids(self) -> None:
        assert v.validate_job_id("t-acme") == "t-acme"
        assert v.validate_store_name("store1") == "store1"
        with pytest.raises(PbsValidationError, match="job id 'ab' is 2 characters; PBS needs at least 3"):
            v.validate_job_id("ab")
        with pytest.raises(PbsValidationError, match="33 characters; PBS allows at most 32"):
            v.validate_job_id("t-" + "x" * 31)
        with pytest.raises(PbsValidationError, match="datastore name"):
            v.validate_store_name("s 1x")
        with pytest.raises(PbsValidationError, match="remote name"):
            v.validate_remote_name("r")

    def test_fingerprint_is_normalised_to_lower_case(self) -> None:
        upper = ":".join(["AB"] * 32)
        assert v.validate_fingerprint(f"  {upper} ") == upper.lower()

    @pytest.mark.parametrize(
        ("value", "fragment"),
        [
            ("ab" * 32, "':' separators are missing"),
            (":".join(["ab"] * 31), "62 hex digits"),
            (":".join(["zz"] * 32), "not a SHA-256 fingerprint"),
            ("", "not a SHA-256 fingerprint"),
        ],
    )
    def test_malformed_fingerprints_are_refused_with_a_hint(self, value: str, fragment: str) -> None:
        with pytest.raises(PbsValidationError) as info:
            v.validate_fingerprint(value)
        assert fragment in str(info.value)

    def test_roles(self) -> None:
        assert v.validate_role("DatastoreBackup") == "DatastoreBackup"
        with pytest.raises(PbsValidationError, match="did you mean 'DatastoreBackup'"):
            v.validate_role("datastorebackup")
        with pytest.raises(PbsValidationError, match="PBS knows"):
            v.validate_role("Owner")


class TestCalendarEvents:
    @pytest.mark.parametrize(
        "event",
        [
            "daily", "hourly", "weekly", "monthly", "yearly", "minutely", "Daily",
            "*:0/30", "02:30", "2:30", "sat 03:00", "mon..fri 02:00", "mon,wed,fri 22:15",
            "sun", "*-*-01 04:00", "2025-01-01 00:00:00", "0/2:00", "mon..fri *:0/15",
            "12-24 18:00", "*:00",
        ],
    )  # fmt: skip
    def test_it_accepts_systemd_style_events(self, event: str) -> None:
        assert v.validate_calendar_event(event) == event

    @pytest.mark.parametrize(
        ("event", "fragment"),
        [
            ("", "is empty"),
            ("every day", "cannot understand 'every'"),
            ("25:00", "hour 25 is outside 0..23"),
            ("02:61", "minute 61 is outside 0..59"),
            ("funday 02:00", "cannot understand"),
            ("mon..fry 02:00", "'fry' is not a weekday"),
            ("02:00 mon", "weekdays must come first"),
            ("*:0/0", "repetition"),
            ("daily 02:00", "can only be used on its own"),
            ("2025-13-01", "month 13 is outside 1..12"),
            ("10..2:00", "runs backwards"),
            ("1:2:3:4", "HH:MM or HH:MM:SS"),
        ],
    )
    def test_it_refuses_garbage_with_a_reason(self, event: str, fragment: str) -> None:
        with pytest.raises(PbsValidationError) as info:
            v.validate_calendar_event(event)
        assert fragment in str(info.value)
