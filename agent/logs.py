"""Structured key=value logs on stderr for the pod's processes (stdout carries markers)."""

from __future__ import annotations

import json
import logging
import sys


def _value(value: object) -> str:
    text = str(value)
    if text and not any(c in text for c in ' "=\n\t'):
        return text
    return json.dumps(text, ensure_ascii=False)


def kv(event: str, **fields: object) -> str:
    """`event=<event> k=v ...`, quoting values that hold spaces, quotes or `=`."""
    return " ".join([f"event={event}", *(f"{k}={_value(v)}" for k, v in fields.items())])


def configure_logging(debug: bool = False) -> None:
    """Once per process; a caller that configured logging first keeps its setup."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            "ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in ("aiohttp", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
