"""Exports the int8 RetinaFace detectors and measures them on the scene set's held-out split.
Run from tools/ (`.venv/bin/python -m pipeline.detector ...`); defaults are the shipped recipe.

    python -m pipeline.detector export  # fine-tuned weights (detector_train) -> models/quantized/
                                      #   retinaface_mnet025_{W}x{H}_int8.tflite; official weights,
                                      #   exported the same way, -> tools/work/ for the comparison
    python -m pipeline.detector eval  # per face class (masked / unmasked / incorrect) and size:
                                      #   AP@0.5, recall at score 0.5 and at a fixed false-positive
                                      #   rate, false positives on face-free photos; official vs
                                      #   fine-tuned, float vs int8 (Python's TFLite interpreter and
                                      #   the shipped runtime through target/release/maskgate)
                                      #   -> tools/work/detector_eval.json
    python -m pipeline.detector framing  # the shipped classifier on the official and the fine-tuned
                                      #   int8 boxes (held-out faces both find), box size, landmarks
"""
import argparse
import functools
import json
import os
import subprocess
import random
import time

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import convert as tfl_convert
from tensorflow.lite.tools import flatbuffer_utils

from pipeline import common, retinaface_keras

SIZES = ((640, 480), (320, 240))  # (W, H): common V4L2 modes, landscape; the shipped sizes
OUT, WORK = common.OUT, common.WORK
CALIB_N = 300  # calibration images (the shipped detectors)


def det_path(W, H, kind="int8", official=False):
    """The shipped int8 detector, or the float model / official-weights comparison in tools/work."""
    if kind == "int8" and not official:
        return os.path.join(OUT, f"retinaface_mnet025_{W}x{H}_int8.tflite")
    return os.path.join(WORK, f"retinaface_mnet025_{W}x{H}{'_official' if official else ''}_{kind}.tflite")


def split(i):
    """Scene image i (sorted by annotation name, one photo = one group): 'train' for the
    fine-tuning (detector_train.py), 'heldout' for measuring only (never trained or calibrated on)."""
    return "heldout" if i % 3 == 2 else "train"


def is_calibration_scene(i):
    """Every third scene image calibrates (a third of the training split, as before fine-tuning)."""
    return i % 3 == 0


def calibration_images(source="scene", n=CALIB_N):
    """Real faces, never random tensors. 'scene' (shipped): a third of the scene set (door-camera-
    like framing, small faces); 'cls': the classification set (mostly tight crops)."""
    if source == "scene":
        files = [p for i, (p, _) in enumerate(common.scene_set()) if is_calibration_scene(i)]
    else:
        base = os.path.join(common.SHARED, "data", "mask-classification")
        files = sorted(os.path.join(base, c, f) for c in ("with_mask", "without_mask") for f in os.listdir(os.path.join(base, c)))
    random.Random(common.SEED).shuffle(files)
    return files[:n]


def export(weights, which=("official", "tuned"), float_only=False, sizes=SIZES, calib="scene", calib_n=CALIB_N, ranges="mean"):
    """int8 (and float) detectors at every size: the fine-tuned weights to models/quantized/, the
    official weights, exported the same way, to tools/work/ for the comparison."""
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(WORK, exist_ok=True)
    calib = calibration_images(calib, calib_n)
    for W, H in sizes:
        for kind in which:
            official = kind == "official"
            model = retinaface_keras.build(H, W, weights=None if official else weights)
            conv = tf.lite.TFLiteConverter.from_keras_model(model)
            with open(det_path(W, H, "float", official), "wb") as f:
                f.write(conv.convert())
            if float_only:
                continue

            def rep():
                for p in calib:
                    canvas, _ = common.letterbox(common.load_rgb(p), H, W)
                    yield [canvas[None]]

            t0 = time.time()
            data = quantize_int8(model, rep, ranges)
            with open(det_path(W, H, "int8", official), "wb") as f:
                f.write(data)
            print(f"{W}x{H} {kind}: int8 {len(data)} bytes, calibrated on {len(calib)} images ({ranges} ranges) in {time.time()-t0:.0f}s")


def quantize_int8(model, rep, ranges="mean"):
    """Full-integer int8 conversion (int8 input / outputs, per-channel weights). With
    ranges="mean", every activation tensor's calibration range is the average of the per-image
    extremes, the statistic TensorFlow's quantization-aware training observers use: a global
    min / max is set by the single most extreme image, so every other frame gets coarser steps;
    averaging lets a rare outlier clip instead. Measured on the scene set's held-out images at
    640x480 it cuts the int8 AP loss from 1.9 to 0.9 points (Python interpreter, models/README.md)."""
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    if ranges == "global":
        return conv.convert()
    conv._experimental_calibrate_only = True  # float model annotated with min / max per tensor
    calibrated = conv.convert()
    obj = flatbuffer_utils.convert_bytearray_to_object(calibrated)
    sg = obj.subgraphs[0]
    # activation tensors: calibrated (one min / max), without constant data, not the model input
    # (its range stays 0..255: scale 1, zero point -128, so the product feeds plain pixels)
    acts = [
        i for i, t in enumerate(sg.tensors)
        if i not in sg.inputs and t.quantization is not None and t.quantization.min is not None and len(t.quantization.min) == 1
        and (t.buffer is None or obj.buffers[t.buffer].data is None or len(obj.buffers[t.buffer].data) == 0)
    ]
    it = tf.lite.Interpreter(model_content=bytes(calibrated), experimental_preserve_all_tensors=True, num_threads=2)
    it.allocate_tensors()
    index = {d["name"]: d["index"] for d in it.get_tensor_details()}
    inp = it.get_input_details()[0]["index"]
    lo, hi = {i: [] for i in acts}, {i: [] for i in acts}
    for (x,) in rep():
        it.set_tensor(inp, x.astype(np.float32))
        it.invoke()
        for i in acts:
            v = it.get_tensor(index[sg.tensors[i].name.decode()])
            lo[i].append(float(v.min()))
            hi[i].append(float(v.max()))
    for i in acts:
        q = sg.tensors[i].quantization
        q.min, q.max = [min(0.0, float(np.mean(lo[i])))], [max(0.0, float(np.mean(hi[i])))]
    # the same quantizer call the converter makes after its own calibration
    return tfl_convert.mlir_quantize(
        bytes(flatbuffer_utils.convert_object_to_bytearray(obj)), input_data_type=tf.int8, output_data_type=tf.int8
    )


class Runner:
    """Runs a detector .tflite (float or int8) on one RGB image and returns decoded detections."""

    def __init__(self, path, threads=2):
        self.it = tf.lite.Interpreter(model_path=path, num_threads=threads)
        self.it.allocate_tensors()
        self.inp = self.it.get_input_details()[0]
        _, self.H, self.W, _ = self.inp["shape"]
        outs = self.it.get_output_details()
        # identify outputs by their last dimension: 4 loc, 2 conf, 10 landmarks
        self.outs = {int(o["shape"][-1]): o for o in outs}
        self.priors = common.priors(self.H, self.W)

    def raw(self, img):
        canvas, scale = common.letterbox(img, self.H, self.W)
        q = self.inp["quantization"]
        if self.inp["dtype"] == np.int8:
            x = np.clip(np.round(canvas / q[0] + q[1]), -128, 127).astype(np.int8)
        else:
            x = canvas.astype(np.float32)
        self.it.set_tensor(self.inp["index"], x[None])
        self.it.invoke()
        res = []
        for k in (4, 2, 10):
            o = self.outs[k]
            v = self.it.get_tensor(o["index"])[0]
            if o["dtype"] == np.int8:
                s, z = o["quantization"]
                v = (v.astype(np.float32) - z) * s
            res.append(v)
        return res, scale

    def detect(self, img, thresh=0.02, **decode_args):
        (loc, conf, landm), scale = self.raw(img)
        return common.decode(loc, conf, landm, self.priors, self.H, self.W, scale, thresh=thresh, **decode_args)


# The product's limits (src/vision/decode.rs MAX_CANDIDATES, src/vision/mod.rs MAX_FACES): the
# best 1024 candidates enter NMS and at most 64 faces come out. Every variant is scored under
# the same limits, so float vs int8 compares weights, not caps (111 of the 853 scenes reach 64
# faces at score 0.02).
MAX_CANDIDATES, MAX_FACES = 1024, 64


def voc_ap(rec, prec):
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = max(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


class MaskgateRunner:
    """The shipped path: the maskgate binary (TFLite C runtime with XNNPACK, Rust pre/post-
    processing) at a low score threshold, read back from its JSON."""

    def __init__(self, W, H, items):
        exe = os.path.join(common.ROOT, "target", "release", "maskgate")
        out = subprocess.run(
            [exe, "image", "--json", "--threads", "2", "--score-threshold", "0.02", "--input-size", f"{W}x{H}", *[p for p, _ in items]],
            check=True, capture_output=True, text=True,
        ).stdout
        self.dets, self.ms = {}, {}
        for line in out.splitlines():
            j = json.loads(line)
            rows = [f["box"] + [f["score"]] for f in j["faces"]]
            self.dets[j["image"]] = np.array(rows, np.float32).reshape(-1, 5)
            self.ms[j["image"]] = j["timing_ms"]["detect"]

    def detect_path(self, path):
        return self.dets[path], self.ms[path] / 1000


# Face classes of the scene set, as the door cares about them, and face sizes: box width in a
# 640x480 frame (the kiosk's camera), whatever the detector's input size.
CLASSES = {"with_mask": "masked", "without_mask": "unmasked", "mask_weared_incorrect": "incorrect"}
SIZES_PX = {"all": (0, 1e9), ">=40": (40, 1e9), "<20": (0, 20), "20-40": (20, 40), "40-80": (40, 80), ">=80": (80, 1e9)}
FP_PER_IMAGE = 0.2  # the fixed false-positive rate at which recall is also read


def face_free_images():
    """Licensed photos without a human face (scikit-image's bundled data: a cat, a horse, coffee,
    coins, a rocket, textures, micrographs...), for false positives."""
    import skimage

    base = os.path.join(os.path.dirname(skimage.__file__), "data")
    skip = {"astronaut.png", "camera.png", "no_time_for_that_tiny.gif"}  # people
    return sorted(os.path.join(base, f) for f in os.listdir(base)
                  if f.lower().endswith((".png", ".jpg")) and f not in skip)


@functools.lru_cache(maxsize=None)
def image_size(path):
    return common.load_rgb(path).shape[:2]


def detections(runner, paths):
    """Per path: (N, 5) [x1 y1 x2 y2 score] at score >= 0.02, under the product's limits."""
    out = {}
    for p in paths:
        if hasattr(runner, "detect_path"):
            out[p] = runner.detect_path(p)[0][:, :5]
        else:
            out[p] = runner.detect(common.load_rgb(p), top_k=MAX_CANDIDATES)[:MAX_FACES, :5]
    return out


def match(dets, gt, iou_thr):
    """Greedy by score: per detection the index of the labelled face it finds, -1 for a false
    positive (a second detection of a found face is a false positive too)."""
    hit = np.full(len(dets), -1)
    if len(dets) == 0 or len(gt) == 0:
        return hit
    ious = common.iou_matrix(dets[:, :4], gt)
    used = np.zeros(len(gt), bool)
    for k in np.argsort(-dets[:, 4], kind="stable"):
        cand = np.where(~used & (ious[k] >= iou_thr))[0]
        if len(cand):
            j = cand[np.argmax(ious[k, cand])]
            used[j] = True
            hit[k] = j
    return hit


def score(dets, items, op_thresh=0.5, iou_thr=0.5, free=None):
    """AP@IoU and recall per face class and size (SIZES_PX), at score `op_thresh` and at the score
    where false positives reach FP_PER_IMAGE per image; detections at `op_thresh` on `free`
    (face-free photos)."""
    rows = []  # (score, class or None for a false positive, face width in a 640x480 frame)
    gts = []  # (class, width) of every labelled face
    for path, boxes in items:
        h, w = image_size(path)
        s = min(640 / w, 480 / h)
        gt = np.array([b for _, b in boxes], np.float32).reshape(-1, 4)
        cls = [CLASSES[n] for n, _ in boxes]
        widths = [float(b[2] - b[0]) * s for b in gt]
        gts += list(zip(cls, widths))
        d = dets[path]
        for k, j in enumerate(match(d, gt, iou_thr)):
            rows.append((float(d[k, 4]), cls[j] if j >= 0 else None, widths[j] if j >= 0 else None))
    rows.sort(key=lambda r: -r[0])
    fp_scores = np.array([r[0] for r in rows if r[1] is None])
    # the score at which false positives reach FP_PER_IMAGE per image
    n_fp = int(FP_PER_IMAGE * len(items))
    fp_thresh = float(fp_scores[n_fp]) if len(fp_scores) > n_fp else 0.02
    res = {"images": len(items), "faces": len(gts), "iou": iou_thr, "op_thresh": op_thresh,
           "fp_per_image_at_op": round(float((fp_scores >= op_thresh).sum()) / len(items), 4),
           "fp_rate": FP_PER_IMAGE, "score_at_fixed_fp": round(fp_thresh, 4)}
    for c in ("all", "masked", "unmasked", "incorrect"):
        for name, (lo, hi) in SIZES_PX.items():
            def face(cls, width):
                return (c == "all" or cls == c) and lo <= width < hi
            n_t = sum(1 for g in gts if face(*g))
            if not n_t:
                continue
            found = [r for r in rows if r[1] is not None and face(r[1], r[2])]
            res[f"{c}_{name}_n"] = n_t
            res[f"{c}_{name}_recall"] = round(sum(r[0] >= op_thresh for r in found) / n_t, 4)
            res[f"{c}_{name}_recall_fixed_fp"] = round(sum(r[0] >= fp_thresh for r in found) / n_t, 4)
            if name in ("all", ">=40"):
                # detections of other classes or sizes are neither hits nor false positives
                keep = [r for r in rows if r[1] is None or face(r[1], r[2])]
                tp = np.cumsum([r[1] is not None for r in keep])
                fp = np.cumsum([r[1] is None for r in keep])
                res[f"{c}_{name}_ap"] = round(voc_ap(tp / n_t, tp / np.maximum(tp + fp, 1e-9)), 4)
    if free is not None:
        res["face_free_images"] = len(free)
        res["face_free_fp_at_op"] = int(sum((d[:, 4] >= op_thresh).sum() for d in free.values()))
        res["face_free_max_score"] = round(max((float(d[:, 4].max()) for d in free.values() if len(d)), default=0.0), 4)
    return res


# What eval measures: the official weights (float, int8 exported the same way) against the
# fine-tuned ones (float, int8 in Python's interpreter, int8 through the shipped binary).
KINDS = ("official-float", "official-int8", "float", "int8", "int8-maskgate")


def kind_path(kind, W, H):
    """The .tflite file of a detector kind: official-float, official-int8, float, int8 (the
    fine-tuned weights), or a .tflite path as it is."""
    if kind.endswith(".tflite"):
        return kind
    return det_path(W, H, kind.split("-")[-1], official=kind.startswith("official"))


def runner_for(kind, W, H, paths):
    if kind == "int8-maskgate":
        return MaskgateRunner(W, H, [(p, None) for p in paths])
    return Runner(kind_path(kind, W, H))


def eval_all(sizes=SIZES, kinds=KINDS):
    items = common.scene_set()
    heldout = [it for i, it in enumerate(items) if split(i) == "heldout"]
    free = face_free_images()
    out = os.path.join(WORK, "detector_eval.json")
    res = {}
    for W, H in sizes:
        for kind in kinds:
            paths = [p for p, _ in heldout] + free
            run = runner_for(kind, W, H, paths)
            dets = detections(run, paths)
            free_dets = {p: dets[p] for p in free}
            r = score(dets, heldout, free=free_dets)
            r["loose_iou"] = score(dets, heldout, iou_thr=0.3)
            # the precision / recall trade-off that picks the product's --score-threshold
            r["by_threshold"] = {t: score(dets, heldout, op_thresh=t, free=free_dets)
                                 for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)}
            res[f"{W}x{H}_{kind}"] = r
            print(f"{W}x{H} {kind}: AP {r['all_all_ap']:.4f}; recall >=40 px masked {r['masked_>=40_recall']:.4f} "
                  f"unmasked {r['unmasked_>=40_recall']:.4f}; face-free FPs {r['face_free_fp_at_op']}", flush=True)
    os.makedirs(WORK, exist_ok=True)
    with open(out, "w") as f:
        json.dump(res, f, indent=1)


def framing(kind_a, kind_b, W=640, H=480, thresh=0.7):
    """What a new detector's boxes do to the classifier, which was trained on another detector's
    framing: on held-out scene faces that both find (IoU >= 0.5 with the label, score >= thresh),
    the shipped classifier's accuracy on each one's crops, the box size ratio and the landmark
    shift (median, as a share of the face width)."""
    cls = tf.lite.Interpreter(model_path=os.path.join(OUT, "mask_resnet_int8.tflite"), num_threads=2)
    cls.allocate_tensors()
    ci, co = cls.get_input_details()[0], cls.get_output_details()[0]
    (si, zi), (so, zo) = ci["quantization"], co["quantization"]

    def p_mask(img, box):
        x = common.crop_square(img, box, int(ci["shape"][1])).astype(np.float32)
        cls.set_tensor(ci["index"], np.clip(np.round(x / si + zi), -128, 127).astype(np.int8)[None])
        cls.invoke()
        return (float(cls.get_tensor(co["index"])[0, 1]) - zo) * so

    runners = {k: Runner(kind_path(k, W, H)) for k in (kind_a, kind_b)}
    found = {k: {} for k in runners}  # (image, face) -> (right, detection row)
    for n, (path, boxes) in enumerate(it for i, it in enumerate(common.scene_set()) if split(i) == "heldout"):
        img = common.load_rgb(path)
        gt = np.array([b for _, b in boxes], np.float32).reshape(-1, 4)
        for k, r in runners.items():
            d = r.detect(img)
            d = d[d[:, 4] >= thresh]
            if not len(d):
                continue
            iou = common.iou_matrix(gt, d[:, :4])
            for j in range(len(gt)):
                m = int(iou[j].argmax())
                if iou[j, m] >= 0.5:
                    found[k][(n, j)] = ((p_mask(img, d[m]) >= 0.5) == (boxes[j][0] == "with_mask"), d[m])
    both = sorted(set(found[kind_a]) & set(found[kind_b]))
    for k in runners:
        ok = sum(found[k][q][0] for q in both)
        ok_all = sum(v[0] for v in found[k].values())
        print(f"{k}: classifier right on {ok}/{len(both)} = {100 * ok / len(both):.2f} % of the faces both find, "
              f"{ok_all}/{len(found[k])} = {100 * ok_all / len(found[k]):.2f} % of all it finds")
    a, b = np.array([found[kind_a][q][1] for q in both]), np.array([found[kind_b][q][1] for q in both])
    wa, ha = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    shift = np.abs(a[:, 5:] - b[:, 5:]).mean(1) / wa
    print(f"{kind_b} / {kind_a} box width {np.median((b[:, 2] - b[:, 0]) / wa):.3f}, height {np.median((b[:, 3] - b[:, 1]) / ha):.3f} "
          f"(median); landmark shift {100 * np.median(shift):.1f} % of the face width (90th percentile {100 * np.percentile(shift, 90):.1f} %)")


def frame_size(s):
    """'640x480' -> (640, 480)."""
    try:
        w, h = (int(v) for v in s.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r}: a size is WxH, e.g. 640x480") from None
    if w < 32 or h < 32 or w % 32 or h % 16:  # the FPN halves the input five times (stride 32)
        raise argparse.ArgumentTypeError(f"{s}: width must be a multiple of 32 and height of 16, at least 32")
    return w, h


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sizes = dict(nargs="+", type=frame_size, default=SIZES, metavar="WxH", help="input sizes (default: the shipped 640x480 320x240)")
    e = sub.add_parser("export", help="write the int8 detectors")
    e.add_argument("--sizes", **sizes)
    e.add_argument("--calib", choices=("scene", "cls"), default="scene",
                   help="calibration images: a third of the scene set's training photos (shipped) or classification crops")
    e.add_argument("--calib-n", type=int, default=CALIB_N, help="how many calibration images")
    e.add_argument("--ranges", choices=("mean", "global"), default="mean",
                   help="activation ranges: mean of per-image extremes (shipped) or TFLite's global min / max")
    e.add_argument("--weights", default=os.path.join(WORK, "retinaface_ft.weights.h5"),
                   help="fine-tuned weights (detector_train.py); the shipped detectors are these")
    e.add_argument("--only", choices=("official", "tuned"), help="export one of the two")
    e.add_argument("--float-only", action="store_true", help="float models only (quick comparisons of training runs)")
    v = sub.add_parser("eval", help="measure every detector on the held-out split -> tools/work/detector_eval.json")
    v.add_argument("--sizes", **sizes)
    v.add_argument("--kinds", nargs="+", default=KINDS, metavar="KIND",
                   help=f"detectors to measure: {', '.join(KINDS)} or a .tflite file (default: all five)")
    f = sub.add_parser("framing", help="the shipped classifier on two detectors' boxes (held-out faces both find)")
    f.add_argument("a", nargs="?", default="official-int8", help="official-int8, official-float, int8, float or a .tflite file")
    f.add_argument("b", nargs="?", default="int8")
    a = p.parse_args(argv)
    if a.cmd == "export":
        export(a.weights, (a.only,) if a.only else ("official", "tuned"), a.float_only, a.sizes, a.calib, a.calib_n, a.ranges)
    elif a.cmd == "framing":
        framing(a.a, a.b)
    else:
        eval_all(a.sizes, a.kinds)


if __name__ == "__main__":
    main()
