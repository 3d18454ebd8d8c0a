"""Parsing the proxy's fault specification."""

from __future__ import annotations

import pytest

from streamkit.errors import ConfigurationError
from streamkit.local.faults import FaultSpec, parse_duration, parse_fault_spec


def test_empty_spec_means_no_faults() -> None:
    assert parse_fault_spec("") == FaultSpec()
    assert not parse_fault_spec(" , ").any


def test_full_spec_parses_every_key() -> None:
    spec = parse_fault_spec("throttle=0.2, internal=5%, unavailable=0.01, reset=0.02, latency=5ms~20ms, "
                            "entry-failure=0.1, expired=0.03, seed=7")
    assert spec == FaultSpec(throttle=0.2, internal=0.05, unavailable=0.01, reset=0.02, latency_min=0.005,
                             latency_max=0.02, entry_failure=0.1, expired=0.03, seed=7)


@pytest.mark.parametrize(("spec", "message"), [("bogus=1", "KEY one of"), ("throttle", "KEY=VALUE"),
                                                ("throttle=2", "between 0 and 1"), ("internal=x", "probability"),
                                                ("latency=9ms~1ms", "low to high"), ("seed=abc", "integer")])
def test_bad_specs_raise_configuration_errors(spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_fault_spec(spec)


@pytest.mark.parametrize(("text", "seconds"), [("250ms", 0.25), ("1.5s", 1.5), ("2", 2.0)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
