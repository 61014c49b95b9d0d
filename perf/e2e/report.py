"""Report: medians over rounds, the results table (markdown) and the ratio chart."""

import os
import statistics
import textwrap

import common
from common import METRICS, log


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def build_table(targets, med):
    cols = [common.LABELS[t] for t in targets]
    ratios = ["ringlbd"] + [t for t in targets if t == "ringlbd2"]
    header = ["metric"] + cols + [f"{common.LABELS[t]} / HAProxy" for t in ratios] + ["goal"]
    rows = []
    for key, label, _hib, fmt, goal in METRICS:
        row = [label]
        for t in targets:
            v = med.get(t, {}).get(key)
            row.append("-" if v is None else fmt.format(v))
        for t in ratios:
            r, h = med.get(t, {}).get(key), med.get("haproxy", {}).get(key)
            row.append(f"{r / h:.2f}x" if r is not None and h else "-")
        row.append(goal or "")
        rows.append(row)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    right = [False] + [True] * (len(header) - 1)

    def fmt_row(r):
        cells = [c.rjust(w) if ra else c.ljust(w) for c, w, ra in zip(r, widths, right)]
        return "| " + " | ".join(cells) + " |"

    sep = "| " + " | ".join(("-" * (w - 1) + ":") if ra else "-" * w for w, ra in zip(widths, right)) + " |"
    return "\n".join([fmt_row(header), sep] + [fmt_row(r) for r in rows])


def draw_chart(path, targets, med, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        log(f"chart skipped: {e}")
        return False
    h = med.get("haproxy", {})
    shown = [t for t in targets if t not in ("haproxy", "direct")]  # direct would flatten the scale
    colors = {"direct": "#9e9e9e", "nginx": "#2e7d32", "ringlbd": "#1565c0", "ringlbd2": "#6a1b9a"}
    fig, ax = plt.subplots(figsize=(11, 5.2))
    n = max(1, len(shown))
    width = 0.8 / n
    xs = range(len(METRICS))
    for i, t in enumerate(shown):
        vals = []
        for key, *_ in METRICS:
            v = med.get(t, {}).get(key)
            vals.append(v / h[key] if v is not None and h.get(key) else 0.0)
        pos = [x - 0.4 + width * (i + 0.5) for x in xs]
        bars = ax.bar(pos, vals, width, label=common.LABELS[t], color=colors.get(t))
        for b, v in zip(bars, vals):
            if v:
                ax.text(b.get_x() + b.get_width() / 2, v, f"{v:.2f}", ha="center", va="bottom", fontsize=7)
    ax.axhline(1.0, color="#c62828", linewidth=1.2, label="HAProxy = 1")
    for x, (key, _l, _hib, _f, goal) in zip(xs, METRICS):
        if goal:
            g = float(goal.split()[1])
            ax.hlines(g, x - 0.45, x + 0.45, colors="black", linestyles="dashed", linewidth=1)
    ax.plot([], [], color="black", linestyle="dashed", label="ringlbd goal")
    ax.set_xticks(list(xs))
    ax.set_xticklabels([textwrap.fill(l, 18) + f"\n({'higher' if hib else 'lower'} is better)"
                        for _k, l, hib, _f, _g in METRICS], fontsize=7)
    ax.set_ylabel("ratio to HAProxy (median of rounds)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)
    plt.close(fig)
    return True
