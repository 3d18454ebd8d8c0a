"""Typed bodies (`body=Model`): decoding and validation, and what the consumer and the dispatcher do with a
record that does not validate. Fakes and the fake clock only (~1 s)."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
import textwrap
from typing import Any

import msgspec
import pydantic
import pytest
from typing_extensions import TypedDict  # Pydantic validates typing.TypedDict from Python 3.12 only

from dispatcher import Dispatcher, LocalTarget
from streamkit.aggregation import UserRecord, encode
from streamkit.bodies import body_decoder, model_kind
from streamkit.checkpoints import MemoryCheckpointStore
from streamkit.consumer import Consumer, ConsumerConfig
from streamkit.destinations import DeadLetter
from streamkit.errors import BodyValidationError, ConfigurationError, ShardFailedError
from streamkit.metrics import Metrics
from streamkit.records import StreamRecord
from streamkit.testing import FakeClock, FakeKinesis


class PydanticReading(pydantic.BaseModel):
    sensor: str
    temp: float


class StructReading(msgspec.Struct):
    sensor: str
    temp: float


@dataclasses.dataclass
class DataclassReading:
    sensor: str
    temp: float


class DictReading(TypedDict):
    sensor: str
    temp: float


MODELS = [PydanticReading, StructReading, DataclassReading, DictReading]
GOOD = b'{"sensor": "s-1", "temp": 21.5}'
BAD = b'{"sensor": "s-1", "temp": "warm"}'


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_a_valid_body_becomes_an_instance_of_the_model(model: Any) -> None:
    body = body_decoder(model)(GOOD)
    if model is DictReading:
        assert body == {"sensor": "s-1", "temp": 21.5}
    else:
        assert isinstance(body, model) and body.temp == 21.5


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_an_invalid_body_names_the_field_and_the_reason(model: Any) -> None:
    with pytest.raises(BodyValidationError) as caught:
        body_decoder(model)(BAD)
    assert caught.value.errors[0][0] == "temp" and caught.value.errors[0][1]
    assert model.__name__ in str(caught.value) and not caught.value.retryable


def test_nested_paths_and_missing_fields_are_spelled_alike_by_both_libraries() -> None:
    class P(pydantic.BaseModel):
        items: list[PydanticReading]

    class S(msgspec.Struct):
        items: list[StructReading]

    doc = b'{"items": [{"sensor": "a", "temp": 1}, {"temp": 2}]}'
    for model in (P, S):
        with pytest.raises(BodyValidationError) as caught:
            body_decoder(model)(doc)
        assert caught.value.errors[0][0] == "items[1].sensor", model


def test_malformed_json_is_a_validation_failure_of_the_record() -> None:
    for model in MODELS:
        with pytest.raises(BodyValidationError):
            body_decoder(model)(b"{not json")


def test_a_type_that_is_not_a_model_is_one_configuration_error() -> None:
    for bad in (int, "yaml", object):
        with pytest.raises(ConfigurationError, match="body must be"):
            body_decoder(bad)
    assert model_kind(StructReading) == "msgspec" and model_kind(DictReading) == "typeddict"


def test_stream_record_takes_a_model_as_its_body() -> None:
    rec: StreamRecord[StructReading] = StreamRecord(GOOD, "k", "1", body=StructReading)
    assert rec.body.sensor == "s-1"


def test_a_missing_library_is_one_line_naming_the_extra() -> None:
    """pydantic made unimportable in a fresh interpreter: a dataclass model then needs the `pydantic` extra."""
    code = textwrap.dedent("""
        import dataclasses, sys
        sys.modules["pydantic"] = None  # import pydantic -> ImportError
        from streamkit.bodies import body_decoder
        from streamkit.errors import ConfigurationError

        @dataclasses.dataclass
        class Reading:
            temp: float

        try:
            body_decoder(Reading)
        except ConfigurationError as exc:
            print(exc)
        print("msgspec" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == ("body=Reading (a dataclass) is validated by Pydantic, which is not installed: "
                      "pip install 'streamkit[pydantic]'")
    assert out[1] == "False"  # nothing imported a library that was not asked for


def test_importing_streamkit_imports_neither_library() -> None:
    code = ("import sys, streamkit.bodies, streamkit.consumer, dispatcher, streamkit.aws_lambda; "
            "print(sorted(m for m in ('pydantic', 'msgspec') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_model_of_one_library_imports_that_library_only() -> None:
    """A Struct through the wrapper never imports pydantic; a Pydantic model never imports msgspec."""
    code = textwrap.dedent("""
        import base64, sys
        import {lib}
        from streamkit.aws_lambda import kinesis_handler

        class Reading({base}):
            temp: float

        seen = []
        handle = kinesis_handler(body=Reading, on_failure=print)(lambda r: seen.append(r.body.temp))
        data = base64.b64encode(b'{{"temp": 1.5}}').decode()
        handle({{"Records": [{{"kinesis": {{"partitionKey": "k", "sequenceNumber": "1", "data": data}},
                              "eventSourceARN": "arn:aws:kinesis:us-east-1:1:stream/s"}}]}}, None)
        print(seen, "{other}" in sys.modules)
    """)
    for lib, base, other in (("msgspec", "msgspec.Struct", "pydantic"), ("pydantic", "pydantic.BaseModel", "msgspec")):
        run = subprocess.run([sys.executable, "-c", code.format(lib=lib, base=base, other=other)], capture_output=True,
                             text=True, check=False)
        assert run.stdout.strip() == "[1.5] False", (lib, run.stdout, run.stderr[-2000:])


# -- the consumer --------------------------------------------------------------------------------------
def run(kinesis: FakeKinesis, clock: FakeClock, handler: Any, **config: Any) -> Consumer:
    c = Consumer("s", handler, application_name="app", checkpoint_store=MemoryCheckpointStore(), client=kinesis,
                 clock=clock, config=ConsumerConfig(**config))
    c.run(install_signal_handlers=False, stop_after_idle=3)
    return c


def readings(kinesis: FakeKinesis, bad_at: int, n: int = 10) -> None:
    for i in range(n):
        kinesis.put("s", BAD if i == bad_at else f'{{"sensor": "s-{i}", "temp": {i}}}'.encode(), "k")


def test_consumer_a_malformed_record_is_dead_lettered_once_with_its_errors_and_the_others_run_in_order() -> None:
    clock = FakeClock()
    kinesis = FakeKinesis(clock=clock)
    readings(kinesis, bad_at=4)
    got: list[StructReading] = []
    letters: list[DeadLetter] = []

    def handler(r: StreamRecord[StructReading]) -> None:
        got.append(r.body)

    c = run(kinesis, clock, handler, body=StructReading, max_attempts=3, on_failure=letters.extend)
    assert [b.sensor for b in got] == [f"s-{i}" for i in range(10) if i != 4]
    assert len(letters) == 1 and letters[0].record.data == BAD and letters[0].attempts == 1
    assert letters[0].validation_errors[0][0] == "temp"
    doc = letters[0].to_json()
    assert doc["validation_errors"][0]["field"] == "temp" and doc["data"]  # the payload travels with it
    assert sum(s.invalid for s in c.final_stats) == sum(s.dead_lettered for s in c.final_stats) == 1


def test_consumer_validates_each_sub_record_of_an_aggregate() -> None:
    clock = FakeClock()
    kinesis = FakeKinesis(clock=clock)
    kinesis.put("s", encode([UserRecord(BAD if i == 2 else GOOD, f"k{i}") for i in range(5)]), "agg")
    got: list[int | None] = []
    letters: list[DeadLetter] = []
    run(kinesis, clock, lambda r: got.append(r.sub_sequence_number), body=PydanticReading, on_failure=letters.extend)
    assert got == [0, 1, 3, 4]
    assert [x.record.sub_sequence_number for x in letters] == [2]


def test_consumer_without_a_destination_stops_at_the_invalid_record_and_says_so_at_start(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    kinesis = FakeKinesis(clock=clock)
    readings(kinesis, bad_at=3)
    got: list[StreamRecord[StructReading]] = []
    store = MemoryCheckpointStore()
    with caplog.at_level(logging.WARNING, logger="streamkit.consumer"), pytest.raises(ShardFailedError):
        Consumer("s", got.append, application_name="app", checkpoint_store=store, client=kinesis, clock=clock,
                 config=ConsumerConfig(body=StructReading)).run(install_signal_handlers=False, stop_after_idle=3)
    assert [r.body.sensor for r in got] == ["s-0", "s-1", "s-2"]
    (lease,) = store.list_leases("app/s")  # the shard stays at the last record before the invalid one
    assert lease.checkpoint.sequence_number == got[-1].sequence_number
    said = [r.getMessage() for r in caplog.records if "without on_failure" in r.getMessage()]
    assert len(said) == 1 and "body=StructReading" in said[0]


def test_consumer_counts_records_invalid_beside_records_dead_lettered() -> None:
    clock = FakeClock()
    kinesis = FakeKinesis(clock=clock)
    readings(kinesis, bad_at=0)
    sent: list[Any] = []
    points: list[Any] = []

    class Sink:
        interval = 60.0

        def publish(self, namespace: str, batch: Any, timestamp_ms: int) -> None:
            points.extend(batch)

        def close(self) -> None:
            return None

    metrics = Metrics(Sink(), background=False)
    c = Consumer("s", lambda r: None, application_name="app", checkpoint_store=MemoryCheckpointStore(), client=kinesis,
                 clock=clock, config=ConsumerConfig(body=DataclassReading, on_failure=sent.extend), metrics=metrics)
    c.run(install_signal_handlers=False, stop_after_idle=3)
    metrics.flush()
    totals: dict[str, float] = {}
    for p in points:
        totals[p.name] = totals.get(p.name, 0) + sum(p.values)
    assert totals["RecordsInvalid"] == totals["RecordsDeadLettered"] == 1 and totals["RecordsProcessed"] == 9


def test_consumer_config_refuses_a_body_that_is_not_a_model() -> None:
    with pytest.raises(ConfigurationError, match=r"ConsumerConfig\.body must be"):
        ConsumerConfig(body=int)  # type: ignore[arg-type]


# -- the dispatcher's LocalTarget ---------------------------------------------------------------------
def stream_records(bad_at: int, n: int = 12) -> list[StreamRecord]:
    return [StreamRecord(BAD if i == bad_at else f'{{"sensor": "s-{i}", "temp": {i}}}'.encode(), f"k{i % 3}", str(i))
            for i in range(n)]


def test_local_target_hands_the_worker_model_instances_and_dead_letters_an_invalid_record_without_retries() -> None:
    seen: list[StructReading] = []
    letters: list[DeadLetter] = []
    calls = {"n": 0}

    def worker(r: StreamRecord[StructReading]) -> None:
        calls["n"] += 1
        seen.append(r.body)

    d = Dispatcher(LocalTarget(worker, workers=2, body=StructReading), mode="per-key", max_attempts=3,
                   dead_letter=letters.extend, sleep=lambda s: None)
    result = d.dispatch(stream_records(bad_at=5))
    d.close()
    assert sorted(int(b.sensor[2:]) for b in seen) == [i for i in range(12) if i != 5] and calls["n"] == 11
    assert result.invalid == result.dead_lettered == 1 and result.retried == 0
    assert letters[0].attempts == 1 and letters[0].validation_errors[0][0] == "temp"


def test_local_target_without_a_dead_letter_reports_the_invalid_record_and_holds_its_key_back() -> None:
    seen: list[str] = []
    d = Dispatcher(LocalTarget(lambda r: seen.append(r.sequence_number), workers=3, body=PydanticReading),
                   mode="per-key", lanes=3, sleep=lambda s: None)
    result = d.dispatch(stream_records(bad_at=4))
    d.close()
    assert result.batch_item_failures() == [{"itemIdentifier": "4"}]
    # key k1 (records 1, 4, 7, 10): 4 failed, so 7 and 10 wait; every other key's records went.
    assert sorted(int(s) for s in seen) == [0, 1, 2, 3, 5, 6, 8, 9, 11]
