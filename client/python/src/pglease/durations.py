"""Durations as the pglease CLI writes them: `90s`, `10m`, `1h`, `1h30m`, or plain seconds."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)([hms])")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str) -> float:
    """Seconds in `text`; ValueError naming the text when it is not a duration."""
    value = str(text).strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return float(value)
    if value and re.fullmatch(r"(?:\d+(?:\.\d+)?[hms])+", value):
        return sum(float(number) * _UNIT[unit] for number, unit in _PART.findall(value))
    raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 10m, 1h, 1h30m or seconds)")
