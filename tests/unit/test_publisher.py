"""The sensor publisher's accounting: what it read, wrote and handed over, on FakeKinesis. Runtime: ~2 s."""

from __future__ import annotations

from typing import Any

import pytest

from producer import FailedRecord, ProducerConfig
from producer.publisher import StopRequest, publish
from streamkit.testing import FakeKinesis

READINGS = [(f"k{i % 3}", b'{"seq": %d}' % i) for i in range(50)]


class DeadAfterStart(FakeKinesis):
    """Answers the producer's start, then every PutRecords fails as a dead server's would."""

    def put_records(self, stream: str, records: Any) -> Any:
        self.unreachable = True
        return super().put_records(stream, records)


def config(on_failure: Any = None) -> ProducerConfig:
    return ProducerConfig(rate_limit=0, record_ttl=0.2, backoff_base=0.01, backoff_max=0.02, on_failure=on_failure)


@pytest.mark.parametrize("kind", ["callable", "destination"])
def test_readings_that_cannot_be_written_are_counted_as_handed_over(kind: str) -> None:
    got: list[Any] = []

    class Destination:
        def send_json(self, documents: list[dict[str, Any]]) -> None:
            got.extend(documents)

    target = got.append if kind == "callable" else Destination()
    summary = publish("s", iter(READINGS), client=DeadAfterStart(), config=config(target))
    assert (summary.read, summary.user_records, summary.handed_over, summary.not_handed_over) == (50, 0, 50, 0)
    assert summary.unacknowledged == 50 and len(got) == 50
    if kind == "callable":
        assert all(isinstance(r, FailedRecord) for r in got)


def test_without_a_destination_they_are_counted_as_not_handed_over() -> None:
    summary = publish("s", iter(READINGS), client=DeadAfterStart(), config=config())
    assert (summary.read, summary.handed_over, summary.not_handed_over) == (50, 0, 50)


def test_everything_written_is_acknowledged() -> None:
    client = FakeKinesis(shards=2)
    summary = publish("s", iter(READINGS), client=client, config=config())
    assert (summary.read, summary.user_records, summary.unacknowledged, summary.stopped_by) == (50, 50, 0, None)


def test_a_stop_before_the_start_makes_no_call_and_says_so() -> None:
    client = FakeKinesis()
    stop = StopRequest()
    stop.request("SIGTERM")
    summary = publish("s", iter(READINGS), client=client, config=config(), stop=stop)
    assert (summary.read, summary.stopped_by) == (0, "SIGTERM")
    assert client.op_counts == {}
