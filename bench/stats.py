"""Small figures helpers the benchmarks share (they run as scripts: `bench/` is on sys.path)."""

from __future__ import annotations


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no data, which prints as `nan`, never as a figure."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
