"""Training reports: JSON + Markdown, confusion-matrix and training-curve PNGs."""

from __future__ import annotations

import json
from pathlib import Path


def confusion_png(metrics: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cm = np.asarray(metrics["confusion"], dtype=float)
    labels = metrics["labels"]
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if cm[i, j]:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center",
                        color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def curves_png(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, ax1 = plt.subplots(figsize=(6.5, 4))
    ax1.plot(ep, [h["loss"] for h in history], label="train loss", color="tab:red")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax2 = ax1.twinx()
    for key in sorted(k for k in history[0] if k.startswith("val_uar")):
        ax2.plot(ep, [h[key] for h in history], label=key)
    ax2.set_ylabel("validation UAR")
    fig.legend(loc="lower center", ncol=4, fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def per_class_table(metrics: dict) -> str:
    lines = ["| class | precision | recall | F1 | n |", "|---|---|---|---|---|"]
    for lab, m in metrics["per_class"].items():
        if m["support"]:
            lines.append(f"| {lab} | {m['precision']:.3f} | {m['recall']:.3f} | "
                         f"{m['f1']:.3f} | {m['support']} |")
    return "\n".join(lines)


def loco_section(loco: dict) -> list[str]:
    """Leave-one-corpus-out (training.loco): the recipe without a corpus, on all of it."""
    md = ["", "## Leave one corpus out (training/loco.py; float, 4 classes, every clip of the corpus)", "",
          "| left out | trained on | clips | speakers | UAR (4 classes) | neutral | happy | sad | angry |",
          "|---|---|---|---|---|---|---|---|---|"]
    for name, r in loco["per_corpus"].items():
        rec = r["recall"]
        md.append(f"| {name} | {' '.join(r['trained_on'])} | {r['n']} | {r['speakers']} | "
                  f"{r['uar_4class']:.3f} | {rec['neutral']:.3f} | {rec['happy']:.3f} | "
                  f"{rec['sad']:.3f} | {rec['angry']:.3f} |")
    md += ["", f"Mean UAR over the left-out corpora: {loco['mean_uar_4class']:.3f}"]
    return md


def amend_report(folder: Path, edit, command: str) -> None:
    """A model's report (``convert.speech --report``) amended after its conversion: ``edit``
    changes the report dict in place, ``command`` (what measured the change) is appended to
    the report's reproduce command, and report.md is written again."""
    folder = Path(folder)
    report = json.loads((folder / "report.json").read_text())
    edit(report)
    report["command"] += f" && {command}"
    write_report(folder, report)


def room_rows(room: dict) -> list[str]:
    """A room section's table rows: the figures (means over the seeds' rooms), then each seed's."""
    rows = [f"| {k} | {v} |" for k, v in room.items() if k != "per_seed"]
    for seed, fig in room.get("per_seed", {}).items():
        rows += [f"| {k}, seed {seed} | {v} |" for k, v in fig.items()]
    return rows


def write_report(out_dir: Path, report: dict) -> None:
    """report: {'title', 'command', 'test': {set: metrics}, 'float_test', 'parity',
    'baselines', 'history'}"""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=1))
    md = [f"# {report['title']}", "", f"Reproduce: `{report['command']}`", ""]
    md += ["## Test split (int8 model, device pipeline)", "",
           "| set | n | accuracy | UAR | macro-F1 | float UAR |", "|---|---|---|---|---|---|"]
    for name, m in report["test"].items():
        fl = report["float_test"][name]["uar"]
        md.append(f"| {name} | {m['n']} | {m['accuracy']:.3f} | {m['uar']:.3f} | "
                  f"{m['macro_f1']:.3f} | {fl:.3f} |")
        confusion_png(m, out_dir / f"confusion_{name}.png", f"{report['title']}: {name} test (int8)")
    for name, room in report.get("room", {}).items():
        md += ["", f"## In the room: {name} (training/room_eval.py)", "",
               "| measure | value |", "|---|---|"] + room_rows(room)
    if report.get("loco"):
        md += loco_section(report["loco"])
    md += ["", "## Float vs int8 parity", "", "```", json.dumps(report["parity"], indent=1), "```"]
    md += ["", "## Classical baselines (pooled MFCC statistics, same split)", "",
           "| model | set | accuracy | UAR | macro-F1 |", "|---|---|---|---|---|"]
    for model, sets in report.get("baselines", {}).items():
        for name, m in sets.items():
            md.append(f"| {model} | {name} | {m['accuracy']:.3f} | {m['uar']:.3f} | "
                      f"{m['macro_f1']:.3f} |")
    for name, m in report["test"].items():
        md += ["", f"## Per class: {name}", "", per_class_table(m),
               "", f"![confusion](confusion_{name}.png)"]
    if report.get("history"):
        curves_png(report["history"], out_dir / "curves.png")
        md += ["", "## Training curves", "", "![curves](curves.png)"]
    (out_dir / "report.md").write_text("\n".join(md) + "\n")
