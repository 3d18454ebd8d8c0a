"""The wrapper on bad input: a broken record is that record's failure, a non-Kinesis event one clear error,
a corrupted aggregate reported, and `report_batch_item_failures=False` fails the invocation."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from streamkit.aggregation import UserRecord, encode
from streamkit.aws_lambda import kinesis_handler
from streamkit.destinations import DeadLetter
from streamkit.errors import BatchFailedError, EventFormatError
from streamkit.records import StreamRecord

EVENTS = Path(__file__).resolve().parents[1] / "events"


def event(name: str = "plain") -> dict[str, Any]:
    return dict(json.loads((EVENTS / f"kinesis_{name}.json").read_text()))


@pytest.mark.parametrize("bad", [None, 42, "text", [], {"Records": [{}]}, {"Records": [{"kinesis": {}}]},
                                 {"Records": "nope"}])
def test_an_event_that_is_not_a_kinesis_event_is_one_clear_error(bad: Any) -> None:
    handler = kinesis_handler(lambda r: None)
    with pytest.raises(EventFormatError, match="not a Kinesis event"):
        handler(bad, None)


def test_a_record_with_invalid_base64_fails_alone_and_goes_to_the_destination_with_its_text() -> None:
    ev = event()
    ev["Records"][1]["kinesis"]["data"] = "!!! not base64 !!!"
    letters: list[DeadLetter] = []
    seen: list[str] = []
    handler = kinesis_handler(body="json", on_failure=letters.extend)(lambda r: seen.append(r.partition_key))
    assert handler(ev, None) == {"batchItemFailures": []}
    assert seen == ["s-0", "s-2"]  # the records around it are processed
    assert len(letters) == 1 and "not valid base64" in letters[0].error and letters[0].attempts == 1
    assert letters[0].record.data == b"!!! not base64 !!!"


def test_without_a_destination_an_undecodable_record_is_reported_where_it_is() -> None:
    ev = event()
    ev["Records"][1]["kinesis"]["data"] = "@@@"
    handler = kinesis_handler(lambda r: None)
    assert handler(ev, None) == {"batchItemFailures": [{"itemIdentifier": ev["Records"][1]["kinesis"]["sequenceNumber"]}]}


def test_a_corrupted_aggregate_digest_is_delivered_as_one_plain_record_and_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    import base64

    blob = bytearray(encode([UserRecord(b"a", "k1"), UserRecord(b"b", "k2")]))
    blob[-1] ^= 0xFF  # break the MD5 digest
    ev = copy.deepcopy(event())
    ev["Records"] = ev["Records"][:1]
    ev["Records"][0]["kinesis"]["data"] = base64.b64encode(bytes(blob)).decode()
    seen: list[StreamRecord] = []
    with caplog.at_level(logging.WARNING, logger="streamkit.lambda"):
        kinesis_handler(seen.append)(ev, None)
    assert len(seen) == 1 and seen[0].data == bytes(blob)
    assert any("digest does not match" in r.getMessage() for r in caplog.records)


def test_without_report_batch_item_failures_a_failure_fails_the_invocation() -> None:
    def fails_on_s1(r: StreamRecord) -> None:
        if r.partition_key == "s-1":
            raise ValueError("bad reading")

    handler = kinesis_handler(max_attempts=1, report_batch_item_failures=False)(fails_on_s1)
    with pytest.raises(BatchFailedError, match="Lambda retries the batch"):
        handler(event(), None)
    reporting = kinesis_handler(max_attempts=1)(fails_on_s1)  # the default: a partial batch response
    assert reporting(event(), None)["batchItemFailures"]
