"""The service's settings from the environment (runtime.settings, its API/tracing section)."""

from __future__ import annotations

import pytest

from keylane.runtime import settings


def test_the_api_token_is_none_when_unset_or_empty(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("KEYLANE_API_TOKEN", raising=False)
    assert settings.api_token() is None
    monkeypatch.setenv("KEYLANE_API_TOKEN", "")
    assert settings.api_token() is None
    monkeypatch.setenv("KEYLANE_API_TOKEN", "s3cret-token-of-some-length")
    assert settings.api_token() == "s3cret-token-of-some-length"


def test_the_traces_endpoint_wins_over_the_generic_one(monkeypatch: pytest.MonkeyPatch):
    for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert settings.otlp_endpoint() is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert settings.otlp_endpoint() == "http://collector:4318"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://other:4318/v1/traces")
    assert settings.otlp_endpoint() == "http://other:4318/v1/traces"


def test_the_service_name(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    assert settings.otel_service_name() == "keylane"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "keylane-eu")
    assert settings.otel_service_name() == "keylane-eu"
