"""Reading serve's metrics: the line that says where they are served, and waiting for a value."""

from __future__ import annotations

import re
import time
import urllib.request
from typing import Any

METRICS_LINE = re.compile(r"metrics on (http://\S+/metrics)")


def until(condition: Any, seconds: float = 15, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def scrape_text(url: str) -> str:
    """The text a metrics endpoint serves (as Prometheus scrapes it)."""
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 (loopback, ours)
        return str(answer.read().decode())
