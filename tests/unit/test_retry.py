"""The retry policy and its loop (`streamkit.retry`), on the fake clock: no real sleeps.

The same file runs again under the lowest and the highest tenacity `pyproject.toml` admits
(`test_the_policy_holds_on_the_lowest_and_highest_tenacity_admitted`, ~10 s: two `pip install --target`
into a temporary folder): tenacity 8.2 asks `stop` before `wait`, 8.3 and later ask `wait` first, and a
policy whose pieces shared a decision failed on one of them.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamkit.errors import ConfigurationError, KinesisError, ThrottledError, ValidationError
from streamkit.retry import Backoff, Interrupted, RetryPolicy, call_with_retry
from streamkit.testing import FakeClock

ROOT = Path(__file__).resolve().parents[2]


class Flaky:
    """Raises `errors` one after another, then returns "ok"; counts its calls."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def throttled(n: int) -> list[BaseException]:
    return [ThrottledError("slow down", code="ProvisionedThroughputExceededException") for _ in range(n)]


def test_a_retryable_error_is_retried_until_the_call_succeeds_within_max_attempts() -> None:
    fn, clock = Flaky(*throttled(4)), FakeClock()
    assert call_with_retry(fn, RetryPolicy(max_attempts=5), clock=clock) == "ok"
    assert fn.calls == 5 and len(clock.sleeps) == 4


def test_attempts_stop_at_max_attempts_and_the_last_error_is_raised() -> None:
    errors = throttled(3)
    fn, clock = Flaky(*errors), FakeClock()
    with pytest.raises(ThrottledError) as raised:
        call_with_retry(fn, RetryPolicy(max_attempts=3), clock=clock)
    assert fn.calls == 3 and raised.value is errors[-1] and len(clock.sleeps) == 2


def test_attempts_stop_by_time_with_a_last_attempt_at_max_elapsed() -> None:
    fn, clock = Flaky(*throttled(1000)), FakeClock()
    start = clock.monotonic()
    with pytest.raises(ThrottledError):
        call_with_retry(fn, RetryPolicy(base=0.5, maximum=2.0, max_elapsed=10.0), clock=clock, rng=random.Random(1))
    assert clock.monotonic() - start == pytest.approx(10.0)  # pauses cut so the last one ends at max_elapsed
    assert fn.calls == len(clock.sleeps) + 1 >= 6  # at most 2 s a pause: at least 5 pauses in 10 s


def test_a_non_retryable_error_is_raised_at_once() -> None:
    fn, clock = Flaky(ValidationError("bad key")), FakeClock()
    with pytest.raises(ValidationError):
        call_with_retry(fn, RetryPolicy(max_attempts=5), clock=clock)
    assert fn.calls == 1 and clock.sleeps == []


def test_a_foreign_exception_is_not_retried_by_default() -> None:
    fn = Flaky(RuntimeError("bug"))
    with pytest.raises(RuntimeError):
        call_with_retry(fn, RetryPolicy(max_attempts=5), clock=FakeClock())
    assert fn.calls == 1


def test_the_retryable_predicate_decides_which_errors_pass() -> None:
    fn = Flaky(RuntimeError("a"), RuntimeError("b"))
    policy = RetryPolicy(max_attempts=5, retryable=lambda e: isinstance(e, RuntimeError))
    assert call_with_retry(fn, policy, clock=FakeClock()) == "ok" and fn.calls == 3


def test_the_pauses_go_through_the_injected_clock_and_are_reported_before_each() -> None:
    fn, clock = Flaky(*throttled(3)), FakeClock()
    reported: list[tuple[int, float]] = []
    call_with_retry(fn, RetryPolicy(base=1.0, maximum=8.0, max_attempts=10), clock=clock, rng=random.Random(7),
                    on_retry=lambda attempt, err, delay: reported.append((attempt, delay)))
    assert [a for a, _ in reported] == [1, 2, 3]
    assert [d for _, d in reported] == clock.sleeps


def test_the_pauses_are_repeatable_from_the_injected_random_source() -> None:
    def pauses() -> list[float]:
        clock = FakeClock()
        call_with_retry(Flaky(*throttled(4)), RetryPolicy(max_attempts=5), clock=clock, rng=random.Random(3))
        return clock.sleeps

    assert pauses() == pauses()


def test_a_stop_set_during_a_pause_ends_the_loop_with_interrupted() -> None:
    stop, clock = threading.Event(), FakeClock()
    clock.on_wait = lambda seconds: stop.set()
    fn = Flaky(*throttled(3))
    with pytest.raises(Interrupted):
        call_with_retry(fn, RetryPolicy(max_attempts=5), clock=clock, stop=stop)
    assert fn.calls == 1


@given(base=st.floats(0.001, 10.0), spread=st.floats(0.0, 100.0), attempt=st.integers(1, 200), seed=st.integers(0, 99))
def test_full_jitter_stays_between_zero_and_the_exponential_ceiling(base: float, spread: float, attempt: int,
                                                                    seed: int) -> None:
    backoff = Backoff(base=base, maximum=base + spread, rng=random.Random(seed))
    ceiling = min(base + spread, base * 2.0 ** (attempt - 1))
    assert backoff.ceiling(attempt) == pytest.approx(ceiling)
    assert 0.0 <= backoff.delay(attempt) <= ceiling


def test_the_ceiling_doubles_from_base_up_to_maximum() -> None:
    backoff = Backoff(base=0.1, maximum=1.0)
    assert [backoff.ceiling(a) for a in range(1, 7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_a_policy_with_bad_bounds_is_refused_at_construction() -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ConfigurationError):
        RetryPolicy(base=2.0, maximum=1.0)


def test_next_delay_gives_up_on_count_time_and_non_retryable_errors() -> None:
    policy = RetryPolicy(base=1.0, maximum=1.0, max_attempts=3, max_elapsed=5.0)
    backoff = policy.backoff(random.Random(0))
    assert policy.next_delay(backoff, 3, 0.0) is None
    assert policy.next_delay(backoff, 1, 5.0) is None
    assert policy.next_delay(backoff, 1, 0.0, KinesisError("no", retryable=False)) is None
    assert policy.next_delay(backoff, 1, 4.9) == pytest.approx(min(0.1, backoff.ceiling(1)), abs=0.1)


def test_retryable_codes_come_from_the_one_list() -> None:
    from streamkit.aws.codes import RETRYABLE_CODES
    assert RetryPolicy.retryable_code("ProvisionedThroughputExceededException")
    assert RetryPolicy.retryable_code("InternalFailure")
    assert not RetryPolicy.retryable_code("ValidationException")
    assert all(RetryPolicy.retryable_code(c) for c in RETRYABLE_CODES)


def test_the_producer_import_path_is_the_same_policy() -> None:
    from producer.retry import RETRYABLE_ENTRY_CODES
    from producer.retry import RetryPolicy as ProducerRetryPolicy
    from streamkit.aws.codes import RETRYABLE_CODES
    assert ProducerRetryPolicy is RetryPolicy and RETRYABLE_ENTRY_CODES is RETRYABLE_CODES


def _admitted_tenacity() -> tuple[str, str]:
    """("tenacity==LOW", "tenacity>=LOW,<HIGH") from pyproject.toml's dependency line."""
    spec = re.search(r'"tenacity(>=[^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert spec is not None, "pyproject.toml names no tenacity range"
    low = re.search(r">=([\d.]+)", spec.group(1))
    assert low is not None
    return f"tenacity=={low.group(1)}", f"tenacity{spec.group(1)}"


@pytest.mark.parametrize("which", ["lowest", "highest"])
def test_the_policy_holds_on_the_lowest_and_highest_tenacity_admitted(which: str, tmp_path: Path) -> None:
    requirement = _admitted_tenacity()[0 if which == "lowest" else 1]
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--disable-pip-version-check",
                          "--target", str(target), requirement], capture_output=True, text=True, timeout=300, check=False)
    assert pip.returncode == 0, f"cannot install {requirement}: {pip.stderr.strip().splitlines()[-1:]}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(ROOT)])}
    version = subprocess.run([sys.executable, "-c", "import importlib.metadata as m; print(m.version('tenacity'))"],
                             env=env, capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    installed = sorted(p.name for p in target.glob("tenacity-*.dist-info"))
    assert installed == [f"tenacity-{version}.dist-info"]
    if which == "lowest":
        assert requirement == f"tenacity=={version}" or requirement == f"tenacity=={version.rsplit('.', 1)[0]}"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
                          "-k", "not lowest_and_highest"], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, f"tenacity {version}:\n{run.stdout[-3000:]}"
    assert " passed" in run.stdout and "failed" not in run.stdout
