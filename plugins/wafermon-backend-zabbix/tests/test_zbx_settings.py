"""Settings as a site config gives them: what is missing or contradictory is named."""

from __future__ import annotations

import pytest

from wafermon import ConfigError, Secret
from wafermon_backend_zabbix import ApiSettings, EmitterSettings
from wafermon_backend_zabbix.keys import key, quote


def test_the_api_needs_a_token_or_user_and_password_not_both():
    with pytest.raises(ConfigError, match="token"):
        ApiSettings(url="http://z")
    with pytest.raises(ConfigError, match="not both"):
        ApiSettings(url="http://z", token=Secret("t"), user="u", password=Secret("p"))
    assert "s3cret" not in repr(ApiSettings(url="http://z", token=Secret("s3cret")))


def test_provisioning_needs_the_api():
    with pytest.raises(ConfigError, match=r"\$\.api"):
        EmitterSettings(provision=True)


@pytest.mark.parametrize(
    ("app", "quoted"),
    [
        ("etch", "etch"),
        ("etch line 2", "etch line 2"),  # inner spaces need no quotes
        ("etch, 2", '"etch, 2"'),
        ("a]b", '"a]b"'),
        (" lead", '" lead"'),
        ('"q', '"\\"q"'),
        ('mid"q', 'mid"q'),  # a quote inside an unquoted parameter is allowed
    ],
)
def test_app_names_are_quoted_in_keys_as_zabbix_quotes_lld_macros(app, quoted):
    assert quote(app) == quoted
    assert key("wafermon.status", app) == f"wafermon.status[{quoted}]"
