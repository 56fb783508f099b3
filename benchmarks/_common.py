"""Shared reporting for the benchmarks (schema rendered by tools/build_pages.py).

Timing is :func:`refimpl.experiments.median_time`.
"""

from __future__ import annotations

import datetime as _dt
import json
import statistics
from pathlib import Path

from refimpl.experiments import median_time
from refimpl.experiments.probes import machine

RESULTS = Path(__file__).parent / "results"


def alternate(ours, peer, repeats: int) -> tuple[float, float]:
    """Median times of ``ours`` and ``peer``, measured in alternation after one warm-up each
    (load on a shared machine then hits both alike)."""
    ours()
    peer()
    t_ours, t_peer = [], []
    for _ in range(repeats):
        t_ours.append(median_time(ours, repeats=1, warmup=0))
        t_peer.append(median_time(peer, repeats=1, warmup=0))
    return statistics.median(t_ours), statistics.median(t_peer)


def write_result(name: str, *, title: str, description: str, ours: str, peer: str,
                 device: str, rows: list[dict], extra: dict | None = None) -> Path:
    """Write ``benchmarks/results/<name>.json`` in the schema the benchmarks page renders.

    Each row has ``case``, ``ours_s``, ``peer_s``, ``ratio`` (ours / peer; below 1 means we
    are faster) and any quality fields (errors, recall, ...).
    """
    for row in rows:
        missing = {"case", "ours_s", "peer_s", "ratio"} - set(row)
        if missing:
            raise ValueError(f"benchmark row {row} lacks {sorted(missing)}")
    payload = {
        "benchmark": name,
        "title": title,
        "description": description,
        "ours": ours,
        "peer": peer,
        "device": device,
        "machine": machine(),
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "rows": rows,
        **(extra or {}),
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path}")
    return path
