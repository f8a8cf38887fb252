"""Settings as a site config gives them: credentials are Secrets, contradictions are errors."""

from __future__ import annotations

import pytest

from wafermon import ConfigError, Secret
from wafermon_backend_elasticsearch import ElasticsearchEmitter, EmitterSettings


def test_api_key_and_basic_auth_together_are_refused():
    with pytest.raises(ConfigError, match="api_key"):
        EmitterSettings(api_key=Secret("k"), username="u", password=Secret("p"))
    with pytest.raises(ConfigError, match="username and password go together"):
        EmitterSettings(username="u")


def test_a_bad_index_prefix_names_the_field():
    with pytest.raises(ValueError, match="index_prefix"):
        EmitterSettings(index_prefix="Wafer*")


def test_secrets_never_show_in_repr():
    settings = EmitterSettings(api_key=Secret("very-secret-key"))
    assert "very-secret-key" not in repr(settings)
    emitter = ElasticsearchEmitter("es", settings)
    assert "very-secret-key" not in repr(emitter)


def test_an_unreadable_ca_file_is_a_config_error_naming_ca_certs(tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"\$\.ca_certs"):
        ElasticsearchEmitter("es", EmitterSettings(hosts=["https://127.0.0.1:9"], ca_certs=bad))
