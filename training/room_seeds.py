"""How much a validation room figure moves with the rooms' seed, for training runs' last epochs.

The selection and adoption rules read the RAVDESS validation actors in the evaluation rooms
of one seed (:data:`training.room_eval.VAL_SEED`). This scores the last epoch of each run
(``checkpoint.weights.h5``, float) in the same conditions built with other seeds (rooms,
noises and which validation song plays under which clip all change with it), so a
difference between two runs can be read against the spread the seed alone gives.
Validation speakers and artists only; it chooses nothing.

    python -m training.room_seeds --runs runs/a runs/b --seeds 1001 1003 1005 1007
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def last_epoch_model(run: Path):
    """The run's network at its last epoch, with its feature parameters and labels."""
    from edge.audio import features as F
    from training import models

    meta = json.loads((run / "train_meta.json").read_text())
    a = meta["args"]
    p = F.FeatureParams.from_dict(meta["features"])
    model = models.speech_model(a["arch"], p.window_frames, p.n_features, len(meta["outputs"]), a["widths"])
    model.build((None, p.window_frames, p.n_features))
    trainer = model
    if a.get("speaker_adversary", 0) > 0:
        trainer, _ = models.with_speaker_adversary(model, speakers_of(meta))
    trainer.load_weights(str(run / "checkpoint.weights.h5"))
    return model, p, meta["labels"]


def speakers_of(meta: dict) -> int:
    """The speaker head's size: the speakers the run trained on, as training numbered them
    (BAVED's, with ``--arousal-aux``, are not counted: such runs are refused)."""
    from training.speech import run_clips, speaker_ids

    if meta["args"].get("arousal_aux"):
        raise ValueError("a run with --arousal-aux (its speaker head counts BAVED's speakers too)")
    return int(max(speaker_ids(run_clips(argparse.Namespace(**meta["args"]))[1])) + 1)


def main(argv: list[str] | None = None) -> int:
    from edge.audio.vad import VadParams
    from training import room_eval
    from training.datasets import by_split, fourq_split, load_corpora, read_4q
    from training.speech import clip_windows, load_signals, probs_of, score_clips, window_outputs

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", nargs="+", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1001, 1003, 1005, 1007])
    ap.add_argument("--conditions", nargs="+", default=list(room_eval.CONDITIONS),
                    choices=list(room_eval.CONDITIONS))
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--ensemble", action="store_true",
                    help="also score the mean of the runs' outputs, as the run 'ensemble' "
                         "(what a distillation's teachers give: training.speech --teachers)")
    args = ap.parse_args(argv)
    nets = {}
    for r in args.runs:
        try:
            nets[r] = last_epoch_model(Path(r))
        except (OSError, KeyError, ValueError) as exc:
            print(f"training.room_seeds: {r}: cannot load its last epoch ({exc})", file=sys.stderr)
            return 2
    p, labels = next(iter(nets.values()))[1:]
    clips = [c for c in by_split(load_corpora(Path(args.data), ["ravdess"]))["val"] if c.label]
    sig = load_signals(clips, p.sample_rate)
    songs = [c for c in read_4q(Path(args.data) / "music" / "4q") if fourq_split(c.artist) == "val"]
    music = load_signals(songs, p.sample_rate)
    out: dict = {"seeds": args.seeds, "runs": {}}
    for cond in args.conditions:
        for seed in args.seeds:
            prepared = clip_windows(room_eval.simulate(cond, sig, seed, music).signals, p, VadParams())
            outputs = {r: window_outputs(lambda x, m=model: m.predict(x, batch_size=256, verbose=0), prepared)
                       for r, (model, _, _) in nets.items()}
            if args.ensemble:  # the runs' outputs averaged, not computed again
                outputs["ensemble"] = [np.mean(w, axis=0) for w in zip(*outputs.values())]
            for r, windows in outputs.items():
                probs = probs_of(prepared, windows, len(labels))
                uar = score_clips(probs, clips, labels)["ravdess"]["uar"]
                out["runs"].setdefault(r, {}).setdefault(cond, []).append(round(float(uar), 4))
    for conds in out["runs"].values():
        for cond, v in list(conds.items()):
            conds[f"{cond}_mean"] = round(float(np.mean(v)), 4)
            conds[f"{cond}_sd"] = round(float(np.std(v, ddof=1)), 4) if len(v) > 1 else None
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
