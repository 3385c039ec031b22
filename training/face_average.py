"""Average the weights of a face run's last epochs (SWA over the low-learning-rate tail).

    python -m training.face_average --data ../shared/data --run runs/face_wide \\
        --snapshots runs/face_wide_snaps/e4[5-9].keras runs/face_wide_snaps/e5[0-2].keras \\
        --out runs/face_wide_swa

Snapshots are ``checkpoint.keras`` files of consecutive epochs (copy each as the run goes
on). BatchNorm statistics are re-estimated on augmented training crops, and the averaged
model is scored on PublicTest exactly as ``training.face`` scores an epoch. The output
folder is a run folder for ``convert.face`` (``best.keras`` = the averaged model,
``train_meta.json`` says what was averaged and what it scored next to the run's best
epoch); which of the two ships is decided there, on PublicTest only.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np

from edge.vision.faces import FaceParams, normalise
from training.face import augment, evaluate, probs_for, subsample
from training.fer import TRAIN, VAL, load_fer
from training.swa import WeightAverage, refresh_batchnorm

log = logging.getLogger("training.face_average")


def average(args: argparse.Namespace) -> dict:
    import keras

    from training.threads import set_threads

    set_threads(args.threads)
    run, out = Path(args.run), Path(args.out)
    meta = json.loads((run / "train_meta.json").read_text())
    p = FaceParams.from_dict(meta["face"])
    data = subsample(load_fer(Path(args.data)), meta["args"].get("max_images", 0), meta["seed"])
    tr, val = data.part(TRAIN), data.part(VAL)

    avg, model = WeightAverage(), None
    for snap in args.snapshots:
        m = keras.models.load_model(snap, compile=False)
        avg.add(m.get_weights())
        if model is None:
            model = m
        log.info("added %s", snap)
    model.set_weights(avg.weights())
    rng = np.random.default_rng(meta["seed"])
    x = normalise(augment(tr.pixels, rng), p)[rng.permutation(len(tr.pixels))]
    refresh_batchnorm(model, x)

    def predict(v):
        return model.predict(v, batch_size=512, verbose=0)

    acc = evaluate(probs_for(predict, val.pixels, p), val)["fer"]["accuracy"]
    log.info("averaged %d snapshots: PublicTest accuracy %.4f (best single epoch %d: %.4f)",
             len(args.snapshots), acc, meta["best_epoch"], meta["best_val_accuracy"])
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out / "best.keras"))
    result = {"snapshots": [str(s) for s in args.snapshots], "val_accuracy": acc,
              "best_single_epoch": meta["best_epoch"],
              "best_single_val_accuracy": meta["best_val_accuracy"],
              "command": "python -m training.face_average " + shlex.join(args.argv)}
    meta.update(weight_average=result, best_val_accuracy=acc)
    (out / "train_meta.json").write_text(json.dumps(meta, indent=1))
    if (run / "baselines.json").exists():
        shutil.copy(run / "baselines.json", out / "baselines.json")
    return result


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--run", required=True, help="the training run (train_meta.json)")
    ap.add_argument("--snapshots", nargs="+", required=True, help="checkpoint .keras files to average")
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    missing = [s for s in args.snapshots if not Path(s).is_file()]
    if missing:
        print(f"error: snapshot file(s) not found: {missing}", file=sys.stderr)
        return 2
    print(json.dumps(average(args), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
