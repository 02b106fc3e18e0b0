"""A version's cost figures: percentiles, throughput, a real process's peak memory, ratios with a floor."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.deploy.figures import Figures, latency_figures, peak_rss_mb, percentile, ratio

pytestmark = pytest.mark.unit

# Holds `megabytes` of touched memory until its stdin closes.
HOLDER = "import sys; ballast = bytearray({megabytes} * 2**20); print('ready', flush=True); sys.stdin.read()"


def test_percentile_is_the_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile(list(range(1, 11)), 99) == 10  # with few rows, p99 is the slowest
    assert percentile([7.0], 50) == 7.0
    with pytest.raises(ValueError):
        percentile([], 99)


def test_latency_figures_are_the_median_the_tail_and_sequential_throughput():
    figures = latency_figures([1.0, 2.0, 2.0, 3.0, 12.0])
    assert (figures.p50_ms, figures.p99_ms) == (2.0, 12.0)
    assert figures.requests_per_s == pytest.approx(1000 / 4.0)  # mean 4 ms, one request at a time
    assert latency_figures([]) == Figures()


def holding(megabytes: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER.format(megabytes=megabytes)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def test_the_peak_memory_of_a_process_that_holds_more_is_higher_by_about_as_much():
    small, large = holding(1), holding(300)
    try:
        lean, heavy = peak_rss_mb(small.pid), peak_rss_mb(large.pid)
    finally:
        for process in (small, large):
            process.communicate("")
    assert lean is not None and heavy is not None
    assert 250 < heavy - lean < 400, (lean, heavy)
    assert peak_rss_mb(large.pid) is None  # it has ended: nothing to read


def test_peak_memory_is_unknown_where_proc_does_not_say(tmp_path: Path):
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "status").write_text("Name:\tpython\nVmRSS:\t 1024 kB\n")
    assert peak_rss_mb(7, proc=tmp_path) is None
    (tmp_path / "7" / "status").write_text("Name:\tpython\nVmHWM:\t  20480 kB\n")
    assert peak_rss_mb(7, proc=tmp_path) == 20.0
    assert peak_rss_mb(8, proc=tmp_path) is None


def test_a_ratio_needs_both_figures_and_counts_small_ones_as_the_floor():
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(None, 2.0) is None and ratio(3.0, None) is None
    assert ratio(1.0, 0.0) is None  # nothing to compare with
    assert ratio(0.9, 0.1, floor=5.0) == pytest.approx(0.18)  # two quick fits: no slowdown to speak of
    assert ratio(40.0, 0.1, floor=5.0) == 8.0  # a fit that became slow is one all the same
