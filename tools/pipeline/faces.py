"""Builds the classifier's face list: every face found by the shipped int8 detector, so that the
training framing is the inference framing.

    python -m pipeline.faces    # (from tools/) -> tools/work/faces.json

Sources
  cls   ../shared/data/mask-classification/{with_mask,without_mask}: the best detection per image
        (images where the detector finds no face are dropped and counted).
  scene ../shared/data/face-mask-detection: each labelled box matched to a detection (IoU >= 0.4);
        label with_mask -> mask; without_mask and mask_weared_incorrect -> no_mask (a chin or
        under-the-nose mask must not open the door).
Exact duplicates (same file bytes) and near duplicates (64-bit dHash of the crop within Hamming
distance 4) are removed before any split.
"""
import hashlib
import json
import os
import time

import numpy as np

from pipeline import common, detector

WORK = common.WORK
LABELS = {"with_mask": 1, "without_mask": 0, "mask_weared_incorrect": 0}
MIN_FACE_PX = 8


def dhash(img, box):
    g = common.crop_square(img, box, 17).astype(np.float32).mean(2)[:16]
    bits = (g[:, 1:] > g[:, :-1])[::2, ::2].flatten()  # 8x8 = 64 bits
    return int("".join("1" if b else "0" for b in bits), 2)


def main():
    t0 = time.time()
    det = detector.Runner(detector.det_path(640, 480))
    faces, seen_md5, dropped = [], set(), {"cls_no_face": 0, "cls_exact_dup": 0, "scene_unmatched": 0, "scene_tiny": 0}
    base = os.path.join(common.SHARED, "data", "mask-classification")
    for cls in ("with_mask", "without_mask"):
        for f in sorted(os.listdir(os.path.join(base, cls))):
            p = os.path.join(base, cls, f)
            md5 = hashlib.md5(open(p, "rb").read()).hexdigest()
            if md5 in seen_md5:
                dropped["cls_exact_dup"] += 1
                continue
            seen_md5.add(md5)
            img = common.load_rgb(p)
            d = det.detect(img, thresh=0.5)
            if len(d) == 0:
                dropped["cls_no_face"] += 1
                continue
            faces.append({"src": "cls", "path": p, "group": p, "box": [float(v) for v in d[0, :4]], "label": LABELS[cls], "hash": dhash(img, d[0])})
    for i, (p, boxes) in enumerate(common.scene_set()):
        img = common.load_rgb(p)
        d = det.detect(img, thresh=0.5)
        gt = np.array([b for _, b in boxes], np.float32).reshape(-1, 4)
        if len(d) == 0:
            dropped["scene_unmatched"] += len(gt)
            continue
        ious = common.iou_matrix(gt, d[:, :4])
        used = set()
        for j, (name, _) in enumerate(boxes):
            k = int(np.argmax(ious[j]))
            if ious[j, k] < 0.4 or k in used:
                dropped["scene_unmatched"] += 1
                continue
            used.add(k)
            box = d[k, :4]
            if box[2] - box[0] < MIN_FACE_PX:
                dropped["scene_tiny"] += 1
                continue
            faces.append({"src": "scene", "path": p, "group": p, "box": [float(v) for v in box], "label": LABELS[name], "voc": name, "hash": dhash(img, box)})
    # near duplicates: same dHash neighbourhood -> keep the first
    kept, hashes = [], []
    near = 0
    for f in faces:
        h = f["hash"]
        if any(bin(h ^ o).count("1") <= 4 for o in hashes):
            near += 1
            continue
        hashes.append(h)
        kept.append(f)
    dropped["near_dup"] = near
    os.makedirs(WORK, exist_ok=True)
    stats = {
        "faces": len(kept),
        "by_source_label": {f"{s}_{l}": sum(1 for f in kept if f["src"] == s and f["label"] == l) for s in ("cls", "scene") for l in (0, 1)},
        "incorrect_as_no_mask": sum(1 for f in kept if f.get("voc") == "mask_weared_incorrect"),
        "dropped": dropped,
        "seconds": round(time.time() - t0),
    }
    json.dump({"stats": stats, "faces": kept}, open(os.path.join(WORK, "faces.json"), "w"))
    print(json.dumps(stats, indent=1))


if __name__ == "__main__":
    main()
