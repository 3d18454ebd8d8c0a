"""Issue 13's configuration and file probes: wrong types and NaN are ConfigurationErrors naming the field,
files holding payloads or positions are 0600 whatever the umask, and no directory is created unasked."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from producer import ProducerConfig
from streamkit.aws_lambda.emulator import EsmConfig
from streamkit.checkpoints import SqliteCheckpointStore
from streamkit.consumer import ConsumerConfig
from streamkit.destinations import JsonLinesDestination
from streamkit.errors import ConfigurationError


@pytest.mark.parametrize(("make", "field"), [
    (lambda: ProducerConfig(max_connections="4"), "max_connections"),  # type: ignore[arg-type]
    (lambda: ProducerConfig(rate_limit=float("nan")), "rate_limit"),
    (lambda: ProducerConfig(aggregation="no"), "aggregation"),  # type: ignore[arg-type]
    (lambda: ProducerConfig(backoff_base=1.0, backoff_max=0.1), "backoff_max"),
    (lambda: ConsumerConfig(max_records="5"), "max_records"),  # type: ignore[arg-type]
    (lambda: ConsumerConfig(lease_duration=float("inf")), "lease_duration"),
    (lambda: ConsumerConfig(backoff_base=2.0, backoff_max=1.0), "backoff_max"),
    (lambda: EsmConfig(batch_size=1.5), "batch_size"),  # type: ignore[arg-type]
])
def test_wrong_types_nan_and_inverted_backoff_are_configuration_errors(make: object, field: str) -> None:
    with pytest.raises(ConfigurationError, match=field):
        make()  # type: ignore[operator]


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_dead_letter_files_and_checkpoint_databases_are_private(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        JsonLinesDestination(tmp_path / "dead.jsonl").send_json([{"x": 1}])
        SqliteCheckpointStore(tmp_path / "c.db")
    finally:
        os.umask(old)
    for name in ("dead.jsonl", "c.db"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name


def test_no_directory_is_created_for_a_path_in_a_missing_folder(tmp_path: Path) -> None:
    for make in (lambda p: JsonLinesDestination(p), lambda p: SqliteCheckpointStore(p)):
        with pytest.raises(ConfigurationError, match="does not exist"):
            make(tmp_path / "missing" / "x")
    assert not (tmp_path / "missing").exists()
