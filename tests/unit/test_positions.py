"""Read positions: one spelling for consume --from, tail --from and lambda run --starting-position (<0.1 s)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streamkit.errors import ConfigurationError
from streamkit.positions import POSITION_HELP, ReadPosition, parse_position


@pytest.mark.parametrize("text", ["trim-horizon", "TRIM_HORIZON", "Trim_Horizon", " trim-HORIZON "])
def test_trim_horizon_is_accepted_with_hyphens_or_underscores_in_any_case(text: str) -> None:
    assert parse_position(text) == ReadPosition(kind="TRIM_HORIZON")


@pytest.mark.parametrize("text", ["latest", "LATEST", "Latest"])
def test_latest_in_any_case(text: str) -> None:
    assert parse_position(text).kind == "LATEST"


@pytest.mark.parametrize("text", ["at-timestamp:2026-01-31T12:00:00Z", "AT_TIMESTAMP:2026-01-31T12:00:00+00:00",
                                  "at_timestamp:2026-01-31T13:00:00+01:00", "at-timestamp:2026-01-31T12:00:00"])
def test_at_timestamp_takes_iso_8601_and_a_time_without_zone_is_utc(text: str) -> None:
    pos = parse_position(text)
    assert pos.kind == "AT_TIMESTAMP"
    assert pos.timestamp == datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert pos.iterator_start().timestamp == datetime(2026, 1, 31, 12, tzinfo=UTC).timestamp()


def test_at_sequence_keeps_the_number_and_starts_at_that_record() -> None:
    seq = "49590338271490256608559692538361571095921575989136588898"
    pos = parse_position(f"AT_SEQUENCE:{seq}")
    assert pos.sequence_number == seq
    start = pos.iterator_start()
    assert (start.type, start.sequence_number) == ("AT_SEQUENCE_NUMBER", seq)


@pytest.mark.parametrize("text", ["latest", "trim-horizon", "at-sequence:12",
                                  "at-timestamp:2026-01-31T12:00:00+00:00"])
def test_the_canonical_spelling_reads_back_to_the_same_position(text: str) -> None:
    assert str(parse_position(text)) == text
    assert parse_position(str(parse_position(text))) == parse_position(text)


@pytest.mark.parametrize(("text", "says"), [
    ("horizon", "use trim-horizon | latest"),
    ("at-timestamp:yesterday", "ISO 8601"),
    ("at-timestamp", "write it as at-timestamp:ISO"),
    ("at-sequence:12ab", "decimal number"),
    ("latest:5", "takes no value"),
])
def test_anything_else_is_one_line_naming_what_is_accepted(text: str, says: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        parse_position(text)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_command_can_accept_only_some_kinds_and_says_which() -> None:
    with pytest.raises(ConfigurationError, match=r"--starting-position 'at-sequence:1': at-sequence is not accepted "
                                                 r"here; use trim-horizon \| latest \| at-timestamp:ISO$"):
        parse_position("at-sequence:1", accept=("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"),
                       option="--starting-position")


def test_the_help_text_lists_every_spelling() -> None:
    assert POSITION_HELP == "trim-horizon | latest | at-timestamp:ISO | at-sequence:SEQ"
