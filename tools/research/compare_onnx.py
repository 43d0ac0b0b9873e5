"""Median per-image time of maskgate (int8, from decoded pixels to classified faces, as printed
in its JSON `timing_ms.total`) against the float RetinaFace ONNX path (onnxruntime on the
official export, 640x640 as exported, letterbox + decode + NMS in numpy, detection only), same
images and thread count.

    python -m research.compare_onnx [--n 100] [--threads 2]   # from tools/
"""
import argparse
import json
import os
import subprocess
import time

import numpy as np
import onnxruntime as ort

from pipeline import common

ROOT = common.ROOT


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    paths = [p for p, _ in common.scene_set()[: a.n]]
    out = subprocess.run(
        [os.path.join(ROOT, "target", "release", "maskgate"), "image", "--json", "--threads", str(a.threads), *paths],
        check=True, capture_output=True, text=True,
    ).stdout
    ours = [json.loads(l)["timing_ms"]["total"] for l in out.splitlines()]
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(f"{common.SHARED}/models/retinaface/FaceDetector_mnet025_640x640.onnx", so)
    pri = common.priors(640, 640)
    theirs = []
    for p in paths:
        img = common.load_rgb(p)
        t = time.perf_counter()
        canvas, scale = common.letterbox(img, 640, 640)
        x = (canvas[..., ::-1] - np.array(common.DET_MEAN_RGB[::-1], np.float32)).transpose(2, 0, 1)[None]
        loc, conf, landm = sess.run(None, {"input0": x.astype(np.float32)})
        common.decode(loc[0], conf[0], landm[0], pri, 640, 640, scale, thresh=0.5)
        theirs.append(1000 * (time.perf_counter() - t))
    mo, mt = float(np.median(ours)), float(np.median(theirs))
    print(f"images {len(paths)}, threads {a.threads}")
    print(f"maskgate int8 640x480 (detect + classify): median {mo:.2f} ms")
    print(f"float ONNX RetinaFace 640x640 (onnxruntime, detect only): median {mt:.2f} ms")
    print(f"ratio float-ONNX / maskgate: {mt / mo:.2f}")


if __name__ == "__main__":
    main()
