"""Prometheus text exposition: parsed with prometheus_client's parser, reduced to what the probe needs.

Every series keeps its labels, so each figure can decide how the series of several engines, ranks or
models combine. Windowed figures (quantiles, rates) come from the difference between two scrapes, never
from lifetime totals, and a counter that went down (the engine restarted) starts the window afresh.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]  # sorted (name, value) pairs of one series


class ExpositionError(ValueError):
    """The body is not Prometheus text exposition."""


@dataclass(frozen=True, slots=True)
class Exposition:
    """Every sample of one scrape by sample name and label set; histograms by label set and bucket."""

    series: Mapping[str, Mapping[Labels, float]]  # sample name (canon) -> labels -> value
    buckets: Mapping[str, Mapping[Labels, Mapping[float, float]]]  # histogram -> labels but le -> le -> count

    def __contains__(self, name: str) -> bool:
        return bool(self.select(name)) or bool(self.histograms(name))

    def select(self, name: str) -> dict[Labels, float]:
        """The series of a sample name; a `{label=value}` tail keeps those carrying that label value."""
        base, wanted = split(name)
        found = self.series.get(base, {})
        if not wanted:
            return dict(found)
        return {labels: v for labels, v in found.items() if wanted <= set(labels)}

    def histograms(self, name: str) -> dict[Labels, Mapping[float, float]]:
        base, wanted = split(name)
        found = self.buckets.get(base, {})
        return {labels: b for labels, b in found.items() if wanted <= set(labels)}

    def value(self, name: str) -> float | None:
        """The sum of a name's series (None when it has none)."""
        found = self.select(name)
        return sum(found.values()) if found else None

    def only(self, names: Iterable[str]) -> Exposition:
        """The same scrape reduced to the families `names` refer to, to keep a few scrapes cheaply."""
        bases = {split(n)[0] for n in names}
        return Exposition(
            {n: s for n, s in self.series.items() if n in bases},
            {n: b for n, b in self.buckets.items() if n in bases},
        )


def split(name: str) -> tuple[str, frozenset[tuple[str, str]]]:
    """`family{a=x,b=y}` -> (canon family, {(a, x), (b, y)})."""
    base, _, tail = name.partition("{")
    pairs = (part.partition("=") for part in tail.rstrip("}").split(",") if part)
    return canon(base), frozenset((k.strip(), v.strip().strip('"')) for k, _, v in pairs)


def canon(name: str) -> str:
    """A sample name without `_total`: the parser adds it to typed counters and leaves it on untyped ones,
    and engines differ in which they send."""
    return name.removesuffix("_total")


def parse(text: str, where: str = "metrics") -> Exposition:
    """Parse exposition text; a body that is not exposition raises ExpositionError naming `where`."""
    series: dict[str, dict[Labels, float]] = {}
    buckets: dict[str, dict[Labels, dict[float, float]]] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                value = float(sample.value)
                if math.isnan(value):
                    continue
                if sample.name.endswith("_bucket") and "le" in sample.labels:
                    labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
                    family = buckets.setdefault(sample.name.removesuffix("_bucket"), {})
                    histogram = family.setdefault(labels, {})
                    le = float(sample.labels["le"])
                    histogram[le] = histogram.get(le, 0.0) + value
                else:
                    labels = tuple(sorted(sample.labels.items()))
                    named = series.setdefault(canon(sample.name), {})
                    named[labels] = named.get(labels, 0.0) + value
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise ExpositionError(f"{where}: not Prometheus exposition ({_first_line(exc)})") from None
    return Exposition(series, buckets)


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
