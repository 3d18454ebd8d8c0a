"""Models and handlers the typed-body CLI tests import (tests.e2e.typed_models:NAME)."""

from __future__ import annotations

import os

import pydantic

from streamkit.records import StreamRecord


class Reading(pydantic.BaseModel):
    sensor: str
    temp: float


def collect(record: StreamRecord[Reading]) -> None:
    with open(os.environ["STREAMKIT_TEST_OUT"], "a") as fh:
        fh.write(f"{record.body.sensor} {record.body.temp}\n")
