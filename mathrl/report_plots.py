"""The report's PNG plots: one colour per group, thin lines per seed, a thick mean with a
shaded 95% CI over seeds. A plot with no data in any run is skipped, not drawn empty.

matplotlib is imported inside write_plots with the Agg backend, so that importing the
report needs no display and no matplotlib until a plot is drawn.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mathrl.stats import t_interval

Series = list[tuple[float, float, float]]  # (step, x, y)


def series(rows: list[dict], ykey: str, xkey: str = "step") -> Series:
    """(step, x, y) for every row with a y value. A row without x (an eval logged on its own
    row) takes the last x logged before it, and 0 before any: x is the step or a cumulative
    counter, so the step-0 baseline eval sits at 0 FLOPs and 0 seconds."""
    out: Series = []
    last_x = 0.0
    for r in rows:
        if r.get("step") is None:
            continue
        if xkey == "step":
            last_x = r["step"]
        elif r.get(xkey) is not None:
            last_x = r[xkey]
        if r.get(ykey) is not None:
            out.append((float(r["step"]), float(last_x), float(r[ykey])))
    return out


def seed_mean(all_series: list[Series]) -> tuple[list[float], list[float], list[float]]:
    """Mean curve over seeds at the steps every seed has: x mean, y mean, y CI half-width
    (0 where undefined). Steps missing from some seed are dropped rather than averaged over
    fewer seeds, which would make the curve jump."""
    by_step = [{s: (x, y) for s, x, y in ser} for ser in all_series]
    common = sorted(set.intersection(*(set(d) for d in by_step))) if by_step else []
    xs, ys, hws = [], [], []
    for s in common:
        pts = [d[s] for d in by_step]
        xs.append(sum(p[0] for p in pts) / len(pts))
        est = t_interval([p[1] for p in pts])
        ys.append(est.mean)
        hws.append(0.0 if est.hi != est.hi else est.hi - est.mean)  # NaN (one seed): no band
    return xs, ys, hws


def _curves(ax, groups: list[dict], colors, get: Callable[[dict], Series]) -> bool:
    """Draw per-seed and mean curves of every group on `ax`; False if nothing was drawn."""
    drawn = False
    for g, color in zip(groups, colors):
        all_series = [get(r) for r in g["runs"]]
        present = [s for s in all_series if s]
        if not present:
            continue
        drawn = True
        if len(present) == 1:
            _, x, y = zip(*present[0])
            ax.plot(x, y, color=color, lw=2, marker="o" if len(x) < 20 else None, ms=3,
                    label=f"{g['label']} (1 seed)")
            continue
        for s in present:
            _, x, y = zip(*s)
            ax.plot(x, y, color=color, lw=0.8, alpha=0.35)
        xs, ys, hws = seed_mean(present)
        if xs:
            label = f"{g['label']} (mean of {len(present)} seeds)"
            ax.plot(xs, ys, color=color, lw=2.2, label=label)
            ax.fill_between(xs, [y - h for y, h in zip(ys, hws)], [y + h for y, h in zip(ys, hws)],
                            color=color, alpha=0.18, lw=0)
    return drawn


def _acc(r: dict, xkey: str) -> Series:
    return series(r["rows"], f"eval/{r['eval_task']}/acc", xkey)


def write_plots(groups: list[dict[str, Any]], output_dir: Path,
                warm: list[dict[str, Any]] | None = None) -> list[tuple[str, str]]:
    """Draw every plot that has data into output_dir; return (file name, caption) pairs.
    `warm` runs (the warm start every group starts from) are drawn as a reference line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = [plt.get_cmap("tab10")(i % 10) for i in range(len(groups))]
    all_runs = [r for g in groups for r in g["runs"]]
    has_eval_kl = any(series(r["rows"], f"eval/{r['eval_task']}/kl_k3") for r in all_runs)
    kl_key, kl_src = ("kl_k3", "evaluation") if has_eval_kl else ("kl/mean", "training batches")

    def kl(r: dict) -> Series:
        key = f"eval/{r['eval_task']}/kl_k3" if has_eval_kl else "kl/mean"
        return series(r["rows"], key)

    # (file, title, x label, y label, series getter)
    specs = [
        ("acc_vs_flops.png", "Eval accuracy vs training compute", "training compute (FLOPs)",
         "eval accuracy (fraction correct)", lambda r: _acc(r, "flops/cumulative")),
        ("acc_vs_wall.png", "Eval accuracy vs wall-clock time", "wall-clock training time (s)",
         "eval accuracy (fraction correct)", lambda r: _acc(r, "time/cumulative_s")),
        ("kl_vs_step.png", f"KL drift from the reference policy ({kl_src})", "training step",
         f"KL(policy ‖ reference) per token ({'k3' if kl_key == 'kl_k3' else 'kl/mean'}, nats)",
         kl),
    ]  # fmt: skip
    written: list[tuple[str, str]] = []
    for fname, title, xlabel, ylabel, get in specs:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        if _curves(ax, groups, colors, get):
            if "accuracy" in ylabel:  # a fraction: a wide 2-seed t-interval must not stretch the axis
                ax.set_ylim(-0.02, 1.02)
                for w in warm or []:
                    if w["final_acc"] is not None:
                        ax.axhline(w["final_acc"], color="grey", ls=":", lw=1.5,
                                   label=f"warm start ({w['algo']}, {w['steps']} steps): {w['final_acc']:.2f}")
            _finish(ax, title, xlabel, ylabel)
            fig.savefig(output_dir / fname, dpi=120, bbox_inches="tight")
            written.append((fname, title))
        plt.close(fig)

    # reward and completion length share the step axis: one figure, two panels
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    drew_r = _curves(ax1, groups, colors, lambda r: series(r["rows"], "reward/mean"))
    drew_l = _curves(ax2, groups, colors, lambda r: series(r["rows"], "rollout/len_mean"))
    if drew_r or drew_l:
        _finish(ax1, "Mean training reward", "training step", "reward (mean over batch)")
        _finish(ax2, "Mean completion length", "training step", "completion length (tokens)")
        fig.savefig(output_dir / "reward_len_vs_step.png", dpi=120, bbox_inches="tight")
        written.append(("reward_len_vs_step.png", "Training reward and completion length vs step"))
    plt.close(fig)

    if any(r["pass_at"] or r["maj_at"] for r in all_runs):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        _at_k(ax, groups, colors)
        _finish(ax, "pass@k and maj@k at the final evaluation",
                "k (samples per problem, log scale)", "fraction of problems solved")
        fig.savefig(output_dir / "pass_maj_vs_k.png", dpi=120, bbox_inches="tight")
        written.append(("pass_maj_vs_k.png", "pass@k (solid) and maj@k (dashed) vs k at the final "
                        "evaluation; error bars: 95% CI over seeds"))
        plt.close(fig)
    return written


def _at_k(ax, groups: list[dict], colors) -> None:
    """pass@k solid, maj@k dashed; error bars are the 95% CI over seeds."""
    for g, color in zip(groups, colors):
        for kind, style in (("pass", "-"), ("maj", "--")):
            stats = g[f"{kind}_at"]
            ks = [k for k in sorted(stats) if stats[k]["mean"] is not None]
            if not ks:
                continue
            ys = [stats[k]["mean"] for k in ks]
            errs = [stats[k]["ci95"] or 0.0 for k in ks]
            # maj@k drawn 4% to the right so that its error bars do not hide pass@k's
            xs = [k * (1.04 if kind == "maj" else 1.0) for k in ks]
            ax.errorbar(xs, ys, yerr=errs, color=color, ls=style, marker="o", ms=4, capsize=3,
                        label=f"{g['label']} {kind}@k (n={len(g['runs'])})")
    ax.set_xscale("log", base=2)
    ks_all = sorted({k for g in groups for kind in ("pass", "maj") for k in g[f"{kind}_at"]})
    ax.set_xticks(ks_all, [str(k) for k in ks_all])


def _finish(ax, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # beside the axes, never over the data
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
