"""Prometheus text exposition: parsed with prometheus_client's parser, reduced to what the probe needs.

Windowed figures (quantiles, rates) come from the difference between two scrapes, never from lifetime
totals, and a counter that went down (the engine restarted) starts the window afresh.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


class ExpositionError(ValueError):
    """The body is not Prometheus text exposition."""


@dataclass(frozen=True, slots=True)
class Exposition:
    """Every sample of one scrape, summed over label sets, by sample name; histograms by bucket."""

    samples: Mapping[str, float]
    buckets: Mapping[str, tuple[tuple[float, float], ...]]  # histogram name -> ((le, cumulative), ...)

    def __contains__(self, name: str) -> bool:
        return canon(name) in self.samples or name in self.buckets

    def value(self, name: str) -> float | None:
        return self.samples.get(canon(name))


def canon(name: str) -> str:
    """A sample name without `_total`: the parser adds it to typed counters and leaves it on untyped ones,
    and engines differ in which they send. A `{label=value}` tail selects one label value."""
    base, brace, tail = name.partition("{")
    return base.removesuffix("_total") + brace + tail


def parse(text: str, where: str = "metrics") -> Exposition:
    """Parse exposition text; a body that is not exposition raises ExpositionError naming `where`."""
    samples: dict[str, float] = {}
    buckets: dict[str, dict[float, float]] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                value = float(sample.value)
                if math.isnan(value):
                    continue
                if sample.name.endswith("_bucket") and "le" in sample.labels:
                    histogram = buckets.setdefault(sample.name.removesuffix("_bucket"), {})
                    le = float(sample.labels["le"])
                    histogram[le] = histogram.get(le, 0.0) + value
                else:
                    name = canon(sample.name)
                    samples[name] = samples.get(name, 0.0) + value
                    reason = sample.labels.get("finished_reason")
                    if reason:  # e.g. vllm:request_success{finished_reason=abort}, for error rates
                        key = f"{name}{{finished_reason={reason}}}"
                        samples[key] = samples.get(key, 0.0) + value
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise ExpositionError(f"{where}: not Prometheus exposition ({_first_line(exc)})") from None
    return Exposition(samples, {name: tuple(sorted(b.items())) for name, b in buckets.items()})


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:80] if text else type(exc).__name__


def counter_delta(new: float, old: float | None) -> float | None:
    """Increase of a counter between two scrapes; a decrease means a restart, so the new value is it."""
    if old is None:
        return None
    return new if new < old else new - old


def bucket_delta(
    new: Iterable[tuple[float, float]], old: Iterable[tuple[float, float]] | None
) -> tuple[tuple[float, float], ...] | None:
    """Per-bucket increase of a histogram between two scrapes (restart-aware, like counter_delta)."""
    if old is None:
        return None
    before = dict(old)
    current = tuple(new)
    if any(count < before.get(le, 0.0) for le, count in current):
        return current
    return tuple((le, count - before.get(le, 0.0)) for le, count in current)


def quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """`histogram_quantile` over cumulative buckets: linear inside the bucket; None without observations."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][0] != math.inf:
        return None
    total = ordered[-1][1]
    if total <= 0:
        return None
    rank = q * total
    lower_le, lower_count = 0.0, 0.0
    for le, count in ordered:
        if count >= rank:
            if le == math.inf:
                return lower_le  # beyond the last finite bound: the bound is the best estimate
            if count == lower_count:
                return le
            return lower_le + (le - lower_le) * (rank - lower_count) / (count - lower_count)
        lower_le, lower_count = le, count
    return lower_le
