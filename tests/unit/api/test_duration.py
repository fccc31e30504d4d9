"""Go duration strings."""

from __future__ import annotations

import re

import pytest

from api.v1alpha1 import DURATION_PATTERN, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("0s", 0.0),
        ("90s", 90.0),
        ("10m", 600.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("500ms", 0.5),
        ("2m3s", 123.0),
        ("1h0m0.5s", 3600.5),
        (".5s", 0.5),
        ("1.s", 1.0),
        ("250us", 0.00025),
        ("250µs", 0.00025),
        ("100ns", 1e-7),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
    assert re.fullmatch(DURATION_PATTERN, text)


@pytest.mark.parametrize(
    "text", ["", "10", "1d", "-5m", "+5m", "5 m", "m", "1h 30m", "ten", "1.5.5s", "5M"]
)
def test_bad_duration_raises_naming_the_text(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        parse_duration(text)
    assert not re.fullmatch(DURATION_PATTERN, text)
