"""The public signing helpers: what a receiver (or an alert notifier) relies on."""

import hashlib
import hmac
import time

import pytest
from wafermon_backend_webhook import SignatureError, sign, signature_headers, verify
from wafermon_backend_webhook.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER

BODY = b'{"events":[]}'


def test_signature_is_hmac_sha256_over_timestamp_dot_body():
    expected = hmac.new(b"k", b"1764320400." + BODY, hashlib.sha256).hexdigest()
    assert sign("k", 1764320400, BODY) == f"v1={expected}"


def test_headers_verify_within_the_window():
    headers = signature_headers("k", BODY, now=1_000_000)
    verify("k", BODY, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], now=1_000_299)


@pytest.mark.parametrize(
    ("body", "timestamp", "now", "why"),
    [
        (BODY + b" ", "1000000", 1_000_000, "does not match"),  # body changed
        (BODY, "1000001", 1_000_000, "does not match"),  # timestamp changed
        (BODY, "1000000", 1_000_301, "outside"),  # replayed after the window
        (BODY, "1000000", 999_699, "outside"),  # from the future
        (BODY, "", 1_000_000, "missing"),
        (BODY, "1e6", 1_000_000, "not Unix seconds"),
    ],
)
def test_verify_refuses(body, timestamp, now, why):
    signature = sign("k", 1_000_000, BODY)
    with pytest.raises(SignatureError, match=why):
        verify("k", body, timestamp, signature, now=now)


def test_wrong_secret_and_missing_signature_are_refused():
    with pytest.raises(SignatureError, match="does not match"):
        verify("other", BODY, "1000000", sign("k", 1_000_000, BODY), now=1_000_000)
    with pytest.raises(SignatureError, match="no v1"):
        verify("k", BODY, "1000000", "sha1=abc", now=1_000_000)


def test_rotation_signs_with_both_and_either_verifies():
    headers = signature_headers(["old", "new"], BODY, now=1_000_000)
    assert headers[SIGNATURE_HEADER].count("v1=") == 2
    for secret in ("old", "new"):
        verify(secret, BODY, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], now=1_000_000)
    verify(["new", "newer"], BODY, "1000000", sign("new", 1_000_000, BODY), now=1_000_000)


def test_empty_secret_is_refused():
    with pytest.raises(ValueError, match="empty"):
        sign("", 1, BODY)


def test_retry_after_as_seconds_or_http_date():
    from email.utils import formatdate

    from wafermon_backend_webhook.posting import retry_after as _retry_after

    assert _retry_after("7") == 7.0
    assert _retry_after(None) is None
    assert _retry_after("soon") is None
    in_a_minute = _retry_after(formatdate(time.time() + 60, usegmt=True))
    assert 55 <= in_a_minute <= 61
    assert _retry_after(formatdate(0, usegmt=True)) == 0.0  # in the past: no wait
