"""Reads a service's /metrics page directly (no Prometheus server: the load test needs
exact counter values at chosen instants, not scrape-interval samples)."""
import re
import urllib.request

_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Sample:
    """One scrape: {(name, ((label, value), ...)): float}."""

    def __init__(self, text):
        self.series = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = _LINE.match(line)
            if not m:
                continue
            labels = tuple(sorted(_LABEL.findall(m.group(2) or "")))
            self.series[(m.group(1), labels)] = float(m.group(3))

    def has(self, name):
        return any(n == name for n, _ in self.series)

    def sum(self, name, **match):
        """Sum of every series of `name` whose labels include `match`."""
        return sum(v for (n, labels), v in self.series.items()
                   if n == name and all((k, str(x)) in labels for k, x in match.items()))

    def by(self, name, label, **match):
        """{value of `label`: sum of the matching series of `name`}."""
        out = {}
        for (n, labels), v in self.series.items():
            d = dict(labels)
            if n == name and label in d and all(d.get(k) == str(x) for k, x in match.items()):
                out[d[label]] = out.get(d[label], 0.0) + v
        return out

    def buckets(self, name):
        """Cumulative histogram buckets of `name`, summed over every other label:
        [(upper bound, count)] sorted by bound (the +Inf bucket last)."""
        return sorted((float(le), c) for le, c in self.by(name + "_bucket", "le").items())


def scrape(url, timeout_s=5):
    with urllib.request.urlopen(url, timeout=timeout_s) as r:
        return Sample(r.read().decode())


def bucket_delta(after, before):
    """Per-bucket growth between two scrapes of the same histogram."""
    base = dict(before)
    return [(le, c - base.get(le, 0.0)) for le, c in after]


def quantile(q, buckets):
    """Prometheus' histogram_quantile: linear within the bucket that holds rank q·n (the
    lower bound of the first bucket is 0). None when the histogram is empty; the highest
    finite bound when the rank falls in +Inf."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lo_bound, lo_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lo_bound
            if count == lo_count:
                return bound
            return lo_bound + (bound - lo_bound) * (rank - lo_count) / (count - lo_count)
        lo_bound, lo_count = bound, count
    return lo_bound
