"""Leave-one-corpus-out: how the speech recipe does on a corpus it never heard.

A leave-one-corpus-out run is the shipped recipe trained on the other corpora (the
full run's feature banks without the left-out corpus's, ``training.speech --final
--banks-from RUN/banks.pkl --corpora ...``). It is scored here on *every* clip of the
left-out corpus (all its speakers: none was heard) over the four classes every corpus
has, neutral / happy / sad / angry, the argmax taken over those four::

    python -m training.loco --run runs/loco_emodb --corpus emodb

``convert.speech --loco RUN...`` writes the same figures into the shipped model's
manifest and report.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from edge.audio import features as F
from edge.audio.vad import VadParams
from training.datasets import load_corpora
from training.metrics import summary
from training.speech import clip_probs, clip_windows, load_signals, predictions

log = logging.getLogger("training.loco")

FOUR = ("neutral", "happy", "sad", "angry")
LEFT_OUT = ("emodb", "ased", "nemo")


def left_out_of(meta: dict, source_corpora: list[str] | None = None) -> str:
    """The corpus a leave-one-corpus-out run did not train on (its banks' source run's
    corpora minus its own)."""
    if source_corpora is None:
        if not meta["args"].get("banks_from"):
            raise ValueError(f"trained on {meta['corpora']} without --banks-from: "
                             "expected one corpus left out of a full run's banks")
        src = Path(meta["args"]["banks_from"]).parent / "train_meta.json"
        source_corpora = json.loads(src.read_text())["corpora"]
    gone = sorted(set(source_corpora) - set(meta["corpora"]))
    if len(gone) != 1:
        raise ValueError(f"expected one corpus left out of {source_corpora}, "
                         f"the run trained on {meta['corpora']}")
    return gone[0]


def four_class_uar(predict, clips, signals, p: F.FeatureParams, labels: list[str]) -> dict:
    """UAR over neutral/happy/sad/angry clips, argmax over those four outputs."""
    keep = [i for i, c in enumerate(clips) if c.label in FOUR]
    allowed = [labels.index(k) for k in FOUR]
    prepared = clip_windows([signals[i] for i in keep], p, VadParams())
    yhat = predictions(clip_probs(predict, prepared, len(labels)), allowed)
    y = [labels.index(clips[i].label) for i in keep]
    m = summary(y, yhat, labels)
    per = {k: round(m["per_class"][k]["recall"], 4) for k in FOUR}
    return {"n": m["n"], "uar_4class": round(m["uar"], 4), "accuracy": round(m["accuracy"], 4),
            "no_guess": m["no_guess"], "recall": per,
            "speakers": len({clips[i].speaker for i in keep})}


def score_run(run: Path, data: Path, corpus: str | None = None, max_clips: int = 0) -> dict:
    """A leave-one-corpus-out run's float model on all of its left-out corpus."""
    import keras

    from convert.tflite import keras_predict

    meta = json.loads((run / "train_meta.json").read_text())
    corpus = corpus or left_out_of(meta)
    if corpus in meta["corpora"]:
        raise ValueError(f"{run} trained on {corpus}: not a left-out corpus")
    p = F.FeatureParams.from_dict(meta["features"])
    clips = [c for c in load_corpora(data, [corpus]) if c.label]
    if max_clips:
        clips = clips[:: max(1, len(clips) // max_clips)][:max_clips]
    model = keras.models.load_model(run / "best.keras", compile=False)
    res = four_class_uar(keras_predict(model), clips, load_signals(clips, p.sample_rate), p,
                         meta["labels"])
    return {"corpus": corpus, "run": str(run), "trained_on": meta["corpora"], "model": "float", **res}


def summarise(results: list[dict]) -> dict:
    return {"per_corpus": {r["corpus"]: r for r in results},
            "mean_uar_4class": round(float(np.mean([r["uar_4class"] for r in results])), 4)
            if results else None}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", nargs="+", required=True, help="leave-one-corpus-out run folders")
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--max-clips", type=int, default=0, help="smoke runs: clips scored")
    ap.add_argument("--write-manifest", default="", metavar="MODEL",
                    help="record the figures in MODEL's manifest (metrics.leave_one_corpus_out "
                         "and metrics.target): the recipe's runs scored after its conversion")
    ap.add_argument("--report", default="", metavar="FOLDER",
                    help="with --write-manifest: the model's report folder (convert.speech --report) "
                         "gets the leave-one-corpus-out section")
    args = ap.parse_args(argv)
    if args.report and not args.write_manifest:
        print("training.loco: --report: only with --write-manifest MODEL", file=sys.stderr)
        return 2
    try:
        res = summarise([score_run(Path(r), Path(args.data), max_clips=args.max_clips)
                         for r in args.run])
    except (OSError, ValueError, KeyError) as e:
        print(f"training.loco: {e}", file=sys.stderr)
        return 2
    print(json.dumps(res, indent=1))
    if args.write_manifest:
        from convert.speech import target_check
        from edge.manifest import manifest_path

        path = manifest_path(Path(args.write_manifest))
        data = json.loads(path.read_text())
        m = data["metrics"]
        m["leave_one_corpus_out"] = res
        m["target"] = target_check(m["test_int8"], m["parity"], m.get("room_test_int8"), res)
        path.write_text(json.dumps(data, indent=2) + "\n")
        if args.report:
            from training.report import amend_report

            amend_report(Path(args.report), lambda report: report.update(loco=res),
                         f"python -m training.loco --run {' '.join(args.run)} "
                         f"--write-manifest {args.write_manifest} --report {args.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
