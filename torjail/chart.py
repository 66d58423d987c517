"""A PNG per relay of its accounting period, from what its tor reported and nothing else: bytes used so far
against the allowance, the even-use line from the period's start to its end, and where the allowance runs out
at the average rate so far (tor hibernates there). The plotted numbers are also in the PNG's "torjail" text
chunk (JSON), so a script can read what the chart shows.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

GIB = 1024 ** 3


def points(row):
    """The chart's numbers: the period (start, end), the allowance, the used bytes now, the even-use line and the
    exhaustion point (None when there is no traffic yet or it falls after the period's end); None without a
    period."""
    period = row["period"]
    if period is None:
        return None
    exhausted = row["exhausted_at"]
    return {
        "start": period["start"], "end": period["end"], "allowance": period["allowance"],
        "now": row["now"], "used": period["used"], "hibernating": row["accounting"]["hibernating"],
        "even_use": [[period["start"], 0], [period["end"], period["allowance"]]],
        "exhausted_at": exhausted if exhausted is not None and exhausted < period["end"] else None,
    }


def _date(seconds):
    return datetime.fromtimestamp(seconds, timezone.utc)


def write(row, path):
    """Write the chart of one relay's row to path (PNG); False, and nothing written, when tor gave no period."""
    data = points(row)
    if data is None:
        return False
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    try:
        start, end, now = _date(data["start"]), _date(data["end"]), _date(data["now"])
        axes.axhline(data["allowance"] / GIB, color="tab:red", label="allowance")
        axes.plot([start, end], [0, data["allowance"] / GIB], color="tab:gray", linestyle="--", label="even use")
        axes.plot([start, now], [0, data["used"] / GIB], color="tab:blue", linewidth=2,
                  label=f"used ({data['used'] / GIB:.2f} GiB)")
        axes.plot([now], [data["used"] / GIB], "o", color="tab:blue")
        if data["exhausted_at"] is not None:
            axes.plot([now, _date(data["exhausted_at"])], [data["used"] / GIB, data["allowance"] / GIB],
                      color="tab:blue", linestyle=":")
            axes.plot([_date(data["exhausted_at"])], [data["allowance"] / GIB], "X", color="tab:red",
                      markersize=10, label="hibernates at this rate")
        if data["hibernating"] in ("soft", "hard"):
            axes.axvline(now, color="tab:orange", label=f"hibernating ({data['hibernating']})")
        axes.set_xlim(start, end)
        axes.set_ylim(0, data["allowance"] / GIB * 1.1)
        axes.set_ylabel("GiB this period")
        axes.set_title(f"{row['host']}: traffic of the accounting period (tor {row['version'] or '?'})")
        axes.legend(loc="upper left")
        axes.grid(alpha=0.3)
        figure.autofmt_xdate()
        figure.savefig(path, format="png", metadata={"torjail": json.dumps(data, sort_keys=True)})
    finally:
        plt.close(figure)
    return True
