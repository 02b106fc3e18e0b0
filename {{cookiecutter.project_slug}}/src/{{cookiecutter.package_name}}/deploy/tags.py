"""The registry's version tags that more than one module reads (registry.py writes them)."""

from __future__ import annotations

PREVIOUS = "previous_champion"  # the champion this version replaced
CANARY = "canary"  # "passed" or "refused", set by the canary that judged it
CANARY_CHAMPION = "canary_champion"  # the champion it was judged against ("none": first)
GATE = "gate"  # "passed", "failed" or "none": the gate's verdict on its commit (`register`)
FORCED = "promoted_without_canary"  # the reason given to promote it all the same
FORCED_BY = "promoted_without_canary_by"
CANARY_FIGURE = "canary_"  # + a figure's name (p50_ms, peak_rss_mb, ...): what the canary measured
