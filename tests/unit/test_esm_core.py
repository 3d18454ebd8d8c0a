"""The event source mapping's decisions after an invocation (AWS's documented semantics)."""

from __future__ import annotations

from streamkit.aws_lambda.esm_core import PendingRecord, ShardProgress, decide


def batch(n: int, arrival: float = 1000.0) -> list[PendingRecord]:
    return [PendingRecord({"SequenceNumber": str(100 + i), "Data": b"x", "PartitionKey": "k",
                           "ApproximateArrivalTimestamp": arrival}) for i in range(n)]


def run(b: list[PendingRecord], **kw: object) -> object:
    args: dict[str, object] = dict(error=None, response=None, report_batch_item_failures=False, bisect_on_error=False,
                                   max_retry_attempts=-1, max_record_age=-1, now=1001.0)
    args.update(kw)
    return decide(b, **args)  # type: ignore[arg-type]


def test_success_checkpoints_the_whole_batch() -> None:
    b = batch(3)
    out = run(b)
    assert out.done == b and not out.retry and not out.discard  # type: ignore[attr-defined]


def test_a_function_error_retries_the_batch_until_attempts_run_out() -> None:
    b = batch(2)
    out = run(b, error=RuntimeError("x"), max_retry_attempts=2)
    assert out.retry == [b] and b[0].attempts == 1  # type: ignore[attr-defined]
    run(b, error=RuntimeError("x"), max_retry_attempts=2)
    out = run(b, error=RuntimeError("x"), max_retry_attempts=2)
    assert out.discard == b and out.condition == "RetryAttemptsExhausted" and b[0].attempts == 3  # type: ignore[attr-defined]


def test_without_limits_a_failing_batch_is_retried_forever() -> None:
    b = batch(1)
    for _ in range(50):
        out = run(b, error=RuntimeError("x"))
        assert out.retry == [b]  # type: ignore[attr-defined]


def test_record_age_discards_with_its_own_condition() -> None:
    b = batch(2, arrival=0.0)
    out = run(b, error=RuntimeError("x"), max_record_age=60, now=61.0)
    assert out.discard == b and out.condition == "RecordAgeExceeded"  # type: ignore[attr-defined]


def test_bisect_splits_a_failing_batch_without_counting_a_retry() -> None:
    b = batch(5)
    out = run(b, error=RuntimeError("x"), bisect_on_error=True, max_retry_attempts=0)
    assert out.retry == [b[:2], b[2:]] and all(r.attempts == 0 for r in b)  # type: ignore[attr-defined]
    single = batch(1)
    out = run(single, error=RuntimeError("x"), bisect_on_error=True, max_retry_attempts=0)
    assert out.discard == single  # type: ignore[attr-defined]


def test_partial_failure_checkpoints_before_the_lowest_reported_record() -> None:
    b = batch(5)
    resp = {"batchItemFailures": [{"itemIdentifier": "104"}, {"itemIdentifier": "102"}]}
    out = run(b, response=resp, report_batch_item_failures=True)
    assert out.done == b[:2] and out.retry == [b[2:]]  # type: ignore[attr-defined]


def test_an_unknown_identifier_fails_the_whole_batch() -> None:
    b = batch(3)
    out = run(b, response={"batchItemFailures": [{"itemIdentifier": "999"}]}, report_batch_item_failures=True)
    assert out.done == [] and out.retry == [b]  # type: ignore[attr-defined]


def test_batch_item_failures_are_ignored_unless_reporting_is_on() -> None:
    b = batch(2)
    out = run(b, response={"batchItemFailures": [{"itemIdentifier": "100"}]})
    assert out.done == b  # type: ignore[attr-defined]


def test_an_empty_failure_list_is_success() -> None:
    b = batch(2)
    assert run(b, response={"batchItemFailures": []}, report_batch_item_failures=True).done == b  # type: ignore[attr-defined]


def test_the_position_passes_only_records_finished_without_a_gap() -> None:
    recs = [PendingRecord({"SequenceNumber": str(100 + i), "Data": b"x", "PartitionKey": "k",
                           "ApproximateArrivalTimestamp": 1000.0}) for i in range(5)]
    progress = ShardProgress()
    progress.read(recs)
    assert progress.finish([recs[1], recs[3]]) is None  # lanes finish out of order: 100 still open
    assert progress.finish([recs[0]]) == "101"
    assert progress.finish([recs[4]]) is None
    assert progress.finish([recs[2]]) == "104"
