"""Paired comparison of classifier runs on the same held-out faces, to tell a better model from a
lucky one: accuracy with its 95 % Wilson interval, and an exact McNemar test against the shipped
model (only the faces one of the two reads wrong count; the 699-face split's standard error is
about half a point, as large as most differences between runs).

    python -m research.compare                   # (from tools/) every tools/work/*_probs.npz against the shipped model
    python -m research.compare A_probs.npz ...   # only these runs

Reads the per-face int8 P(mask) each classifier.py run saves (key heldout_test_int8); the shipped
model is scored here, with the same crops and the same Python interpreter.
"""
import glob
import json
import os
import sys

import numpy as np

from pipeline import classifier as C
from research.stats import mcnemar, wilson


def row(name, p, y, base_ok, chin, large):
    ok = (p >= 0.5) == y
    lo, hi = wilson(int(ok.sum()), len(y))
    b, c = int((base_ok & ~ok).sum()), int((~base_ok & ok).sum())
    llo, lhi = wilson(int(ok[large].sum()), int(large.sum()))
    print(
        f"{name:48s} {100 * ok.mean():6.2f} % [{100 * lo:5.2f}, {100 * hi:5.2f}] {int((~ok).sum()):4d}"
        f" {b:5d} {c:5d} {mcnemar(b, c):6.3f} {int((p[chin] < 0.5).sum())}/{int(chin.sum())}"
        f"     {100 * ok[large].mean():6.2f} % [{100 * llo:5.2f}, {100 * lhi:5.2f}]"
    )


def main():
    faces = json.load(open(os.path.join(C.WORK, "faces.json")))["faces"]
    test = C.splits(faces)["test"]
    x, y = C.load_crops(test, C.SIZE)
    chin, large = C.chin_masks(test), C.judged(test)
    shipped = os.path.join(C.OUT, "mask_resnet_int8.tflite")
    p0 = C.tflite_probs(open(shipped, "rb").read(), x)
    base_ok = (p0 >= 0.5) == y
    runs = sys.argv[1:] or sorted(glob.glob(os.path.join(C.WORK, "*_probs.npz")))
    print(f"held-out split: {len(y)} faces, {int(chin.sum())} chin masks, {int(large.sum())} faces >= {C.MIN_FACE_PX} px; base: the shipped model")
    print(f"{'run':48s} {'int8 acc.':8s} {'95 % interval':16s} {'err':>4s} {'only':>5s} {'only':>5s} {'McNemar':>7s} chin    faces >= {C.MIN_FACE_PX} px")
    print(f"{'':48s} {'':8s} {'':16s} {'':4s} {'base':>5s} {'run':>5s} {'p':>7s} no mask acc. and 95 % interval")
    row("shipped (" + os.path.basename(shipped) + ")", p0, y, base_ok, chin, large)
    for path in runs:
        d = np.load(path)
        if "heldout_test_int8" not in d:
            continue
        if not np.array_equal(d["heldout_test_y"], y):
            sys.exit(f"{path}: its held-out labels differ from today's split (faces.json changed since that run)")
        row(os.path.basename(path).removesuffix("_probs.npz"), d["heldout_test_int8"], y, base_ok, chin, large)


if __name__ == "__main__":
    main()
