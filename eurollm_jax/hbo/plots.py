"""PNG plots of an HBO run from its metrics.jsonl: p_G, p_L per subset and the rewards.

``plot_run(workdir)`` writes ``WORKDIR/plots/hbo_p_global.png`` (one line per subset),
``hbo_p_local.png`` (one panel per subset, one line per bucket), ``hbo_rewards.png``
(R_G per subset and R_L per bucket at the update steps) and returns their paths.
Needs matplotlib (imported lazily; the Agg backend, no display).
"""

from __future__ import annotations

import collections
import os

from eurollm_jax.fileio import read_jsonl


def _series(records, prefix: str) -> dict[str, tuple[list, list]]:
    out: dict[str, tuple[list, list]] = collections.OrderedDict()
    for r in records:
        for k, v in r.items():
            if k.startswith(prefix):
                xs, ys = out.setdefault(k[len(prefix):], ([], []))
                xs.append(r["step"])
                ys.append(v)
    return out


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("HBO plots need matplotlib: pip install matplotlib") from e
    return plt


def plot_run(workdir: str) -> list[str]:
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist: plot a workdir the trainer wrote")
    records = read_jsonl(path)
    plt = _pyplot()
    out_dir = os.path.join(workdir, "plots")
    os.makedirs(out_dir, exist_ok=True)
    written = []

    p_g = _series(records, "hbo/p_G/")
    if p_g:
        fig, ax = plt.subplots(figsize=(7, 4))
        for name, (xs, ys) in p_g.items():
            ax.plot(xs, ys, label=name)
        ax.set(xlabel="step", ylabel="p_G", title="HBO global actor: subset probabilities")
        ax.legend(fontsize="small", ncol=2)
        written.append(_save(fig, out_dir, "hbo_p_global.png", plt))

    p_l = _series(records, "hbo/p_L/")
    subsets = sorted({k.rsplit("/", 1)[0] for k in p_l})
    if subsets:
        cols = min(4, len(subsets))
        rows = -(-len(subsets) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
        for ax, sub in zip(axes.flat, subsets):
            for name, (xs, ys) in p_l.items():
                if name.rsplit("/", 1)[0] == sub:
                    ax.plot(xs, ys, label=name.rsplit("/", 1)[1])
            ax.set_title(sub, fontsize="small")
            ax.legend(fontsize="x-small")
        for ax in list(axes.flat)[len(subsets):]:
            ax.axis("off")
        fig.suptitle("HBO local actors: bucket probabilities (b0 = easiest)")
        written.append(_save(fig, out_dir, "hbo_p_local.png", plt))

    r_g, r_l = _series(records, "hbo/R_G/"), _series(records, "hbo/R_L/")
    if r_g or r_l:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for name, (xs, ys) in r_g.items():
            axes[0].plot(xs, ys, marker="o", label=name)
        axes[0].set(xlabel="step", ylabel="R_G (gradient norm)", title="global rewards")
        for name, (xs, ys) in r_l.items():
            axes[1].plot(xs, ys, marker=".", label=name)
        axes[1].set(xlabel="step", ylabel="R_L (normalised PPL ratio)", title="local rewards")
        for ax in axes:
            if ax.lines:
                ax.legend(fontsize="x-small", ncol=2)
        written.append(_save(fig, out_dir, "hbo_rewards.png", plt))
    return written


def _save(fig, out_dir: str, name: str, plt) -> str:
    path = os.path.join(out_dir, name)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
