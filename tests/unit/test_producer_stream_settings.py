"""The producer follows the stream's settings (DescribeStreamSummary): its record size limit, and AUTO
record distribution (no aggregation, keyless records, no shard prediction), also when they change mid-run."""

from __future__ import annotations

import logging

import pytest

from producer import FailedRecord, Producer, ProducerConfig
from streamkit.aggregation import is_aggregated
from streamkit.errors import ValidationError
from streamkit.testing import FakeKinesis

FAST = dict(rate_limit=0, record_max_buffered_time=0.005, backoff_base=0.001, backoff_max=0.01)


def fake(**stream: object) -> FakeKinesis:
    kinesis = FakeKinesis(auto_create=False)
    kinesis.create_stream("s", stream.pop("shards", 2), **stream)  # type: ignore[arg-type]
    return kinesis


def written(kinesis: FakeKinesis) -> list[dict[str, object]]:
    return [entry for entries in kinesis.written.values() for _seq, entry in entries]


def test_a_record_above_the_streams_limit_is_refused_before_the_network_naming_the_limit() -> None:
    kinesis = fake()
    with Producer("s", client=kinesis, config=ProducerConfig(**FAST)) as p, \
            pytest.raises(ValidationError, match="over the 1048576-byte record limit of stream 's'"):  # type: ignore[arg-type]
        p.put(b"x" * (2 * 1024 * 1024), "k")
    assert kinesis.calls == 0


def test_on_a_10_mib_stream_a_5_mib_record_is_written_whole() -> None:
    kinesis = fake(max_record_size_kib=10240)
    big = bytes(range(256)) * (5 * 1024 * 4)  # 5 MiB
    with Producer("s", client=kinesis, config=ProducerConfig(**FAST)) as p:  # type: ignore[arg-type]
        result = p.put(big, "k").result(timeout=5)
    assert result.sub_sequence_number is None
    assert [e["Data"] for e in written(kinesis)] == [big]


def test_on_an_auto_stream_nothing_is_aggregated_keys_are_optional_and_records_spread(
        caplog: pytest.LogCaptureFixture) -> None:
    kinesis = fake(on_demand=True, distribution="AUTO")
    with caplog.at_level(logging.WARNING, logger="streamkit.producer"), \
            Producer("s", client=kinesis, config=ProducerConfig(**FAST)) as p:  # type: ignore[arg-type]
        futures = [p.put(b"r%d" % i, "one-key") for i in range(2000)] + [p.put(b"keyless", None)]
        p.flush()
        metrics = p.metrics()
    results = [f.result(timeout=5) for f in futures]
    assert len({r.shard_id for r in results}) >= 2  # one key, yet several shards: the service placed them
    entries = written(kinesis)
    assert len(entries) == 2001 and not any(is_aggregated(e["Data"]) for e in entries)  # type: ignore[arg-type]
    (keyless,) = [e for e in entries if e["Data"] == b"keyless"]
    assert "PartitionKey" not in keyless and not any("ExplicitHashKey" in e for e in entries)
    assert metrics["record_distribution"] == "AUTO" and metrics["aggregating"] is False
    assert metrics["reshards_detected"] == 0  # landing in "unpredicted" shards is not a reshard there
    assert sum("RecordDistributionStrategy AUTO" in r.getMessage() for r in caplog.records) == 1


def test_on_a_user_partition_key_stream_a_missing_key_is_refused_before_the_network() -> None:
    kinesis = fake()
    with Producer("s", client=kinesis, config=ProducerConfig(**FAST)) as p, \
            pytest.raises(ValidationError, match="partition_key=None needs a stream that places records itself"):  # type: ignore[arg-type]
        p.send(b"x", None)
    assert kinesis.calls == 0


def test_a_switch_from_auto_to_user_partition_key_mid_run_loses_nothing() -> None:
    kinesis = fake(on_demand=True, distribution="AUTO")
    failed: list[FailedRecord] = []
    config = ProducerConfig(**FAST, on_failure=failed.append)  # type: ignore[arg-type]
    with Producer("s", client=kinesis, config=config) as p:
        before = [p.put(b"a%d" % i, f"k{i % 4}") for i in range(50)]
        p.flush()
        kinesis.update_record_distribution("s", "USER_PARTITION_KEY")
        after = [p.put(b"b%d" % i, f"k{i % 4}") for i in range(50)]
        keyless = p.put(b"no key", None)  # accepted: the producer has not learnt of the switch yet
        p.flush()
        metrics = p.metrics()
    assert all(f.result(timeout=5) for f in before + after)  # every keyed record written
    with pytest.raises(ValidationError, match="no longer places records itself"):
        keyless.result(timeout=5)
    assert [r.data for r in failed] == [b"no key"]  # the keyless one handed to on_failure, not dropped
    assert metrics["record_distribution"] == "USER_PARTITION_KEY" and metrics["aggregating"] is True
    assert {e["Data"] for e in written(kinesis)} >= {b"a%d" % i for i in range(50)}
