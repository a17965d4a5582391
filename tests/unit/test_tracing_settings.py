"""OTEL_* settings: read under the SDK's names, refused when the SDK would quietly fall
back to a default, and sampling as the operator asked."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.sampling import Decision
from pydantic import ValidationError

from integrations.tracing import process_tracing, sampler_of
from settings import Settings


def test_tracing_is_off_unless_an_exporter_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    assert Settings().otel_traces_exporter == "none"
    assert process_tracing(Settings()) is None
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", " OTLP ")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "ParentBased_TraceIdRatio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "shop-eu")
    settings = Settings()
    assert settings.otel_traces_exporter == "otlp"
    assert settings.otel_traces_sampler == "parentbased_traceidratio"
    assert settings.otel_traces_sampler_arg == 0.25
    assert settings.otel_service_name == "shop-eu"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OTEL_TRACES_EXPORTER", "jaeger"),
        ("OTEL_TRACES_EXPORTER", "otlp,console"),
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
        ("OTEL_TRACES_SAMPLER_ARG", "-0.1"),
        ("OTEL_SERVICE_NAME", ""),
    ],
)
def test_a_value_the_sdk_would_replace_by_a_default_is_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert name.lower() in str(refused.value)
    assert value not in str(refused.value) or not value  # named, never echoed


def test_the_ratio_sampler_keeps_about_that_share_of_new_traces() -> None:
    sampler = sampler_of("parentbased_traceidratio", 0.1)
    kept = sum(
        sampler.should_sample(None, trace_id, "GET /").decision is Decision.RECORD_AND_SAMPLE
        for trace_id in range(1, 2**64, 2**64 // 10_000)
    )
    assert 800 < kept < 1200
    assert sampler_of("always_off", None).should_sample(None, 1, "x").decision is Decision.DROP
    assert sampler_of("traceidratio", None).should_sample(None, 1, "x").decision is (
        Decision.RECORD_AND_SAMPLE
    )
