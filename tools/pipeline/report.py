"""Writes the measured numbers and sha256 of the shipped models into models/README.md, between
the `metrics:begin` / `metrics:end` markers, from tools/work/*.json; a section whose json is
absent (a partial rebuild) keeps its current text."""
import json
import os

from pipeline import common

ROOT, WORK = common.ROOT, common.WORK
BEGIN, END = "<!-- metrics:begin -->", "<!-- metrics:end -->"


def load(name):
    p = os.path.join(WORK, name)
    return json.load(open(p)) if os.path.exists(p) else None


def old_section(block, title):
    """The section of the current metrics block (its lines) whose heading starts with `title`: a
    classifier-only rebuild (no tools/work/detector_eval.json) must not drop the detector's table."""
    for i, line in enumerate(block):
        if line.startswith(title):
            j = next((k for k in range(i + 1, len(block)) if block[k].startswith("### ")), len(block))
            return block[i:j]
    return []


KIND_NAMES = {"official-float": "official, float", "official-int8": "official, int8",
              "float": "fine-tuned, float", "int8": "fine-tuned, int8", "int8-maskgate": "**fine-tuned, int8, shipped runtime**"}


def detector_tables(det):
    """Held-out split, per face class and size (tools/detector.py eval)."""
    any_r = next(iter(det.values()))
    op = any_r["op_thresh"]
    lines = [f"### Detector: held-out scene images ({any_r['images']} photos, {any_r['faces']} labelled faces), official vs fine-tuned", "",
             f"Recall at score {op} (IoU 0.5; in brackets IoU 0.3, which does not punish a box drawn tighter or looser than the"
             " labels), for faces >= 40 px wide in a 640x480 frame (the ones the kiosk judges) and all; AP@0.5 over all faces;"
             " false positives per held-out image, and detections on the 24 face-free photos, at the same score.", "",
             "| input | weights | AP all | AP masked | AP unmasked | masked >= 40 px | unmasked >= 40 px | incorrect >= 40 px"
             " | masked, all | unmasked, all | FP / image | face-free FPs |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for k, r in det.items():
        size, kind = k.split("_", 1)
        lo = r["loose_iou"]
        cell = lambda key: f"{r[key]:.3f} ({lo[key]:.3f})"
        lines.append(f"| {size} | {KIND_NAMES.get(kind, kind)} | {r['all_all_ap']:.4f} | {r['masked_all_ap']:.4f} | {r['unmasked_all_ap']:.4f}"
                     f" | {cell('masked_>=40_recall')} | {cell('unmasked_>=40_recall')} | {cell('incorrect_>=40_recall')}"
                     f" | {r['masked_all_recall']:.3f} | {r['unmasked_all_recall']:.3f} | {r['fp_per_image_at_op']:.2f} | {r['face_free_fp_at_op']} |")
    lines += ["", f"Recall by face size (px wide in a 640x480 frame), at score {op}, IoU 0.5; at a fixed false-positive rate"
              f" of {any_r.get('fp_rate', 0.2)} per image in brackets:", "",
              "| input | weights | class | < 20 | 20-40 | 40-80 | >= 80 |", "|---|---|---|---|---|---|---|"]
    for k, r in det.items():
        size, kind = k.split("_", 1)
        if kind not in ("official-int8", "int8-maskgate"):
            continue
        for c in ("masked", "unmasked"):
            cells = [f"{r[f'{c}_{b}_recall']:.3f} ({r[f'{c}_{b}_recall_fixed_fp']:.3f}) n={r[f'{c}_{b}_n']}" for b in ("<20", "20-40", "40-80", ">=80")]
            lines.append(f"| {size} | {KIND_NAMES[kind]} | {c} | " + " | ".join(cells) + " |")
    lines += ["", "Score threshold trade-off, shipped detectors (shipped runtime): recall of faces >= 40 px, false positives", "",
              "| input | score | masked >= 40 px | unmasked >= 40 px | all faces | FP / held-out image | face-free FPs |",
              "|---|---|---|---|---|---|---|"]
    for k, r in det.items():
        size, kind = k.split("_", 1)
        if kind != "int8-maskgate":
            continue
        for t, q in r["by_threshold"].items():
            lines.append(f"| {size} | {t} | {q['masked_>=40_recall']:.3f} | {q['unmasked_>=40_recall']:.3f} | {q['all_all_recall']:.3f}"
                         f" | {q['fp_per_image_at_op']:.2f} | {q['face_free_fp_at_op']} |")
    return lines + [""]


def main():
    readme = os.path.join(ROOT, "models", "README.md")
    text = open(readme).read()
    a, b = text.index(BEGIN) + len(BEGIN), text.index(END)
    current = text[a:b].split("\n")
    lines = []
    det = load("detector_eval.json")
    if det:
        lines += detector_tables(det)
    else:
        lines += old_section(current, "### Detector")
    faces = load("faces.json")
    if faces:
        s = faces["stats"]
        lines += ["### Classifier data (after de-duplication)", "", "```", json.dumps(s, indent=1), "```", ""]
    else:
        lines += old_section(current, "### Classifier data")
    cls = load("classifier_report.json")
    if cls:
        lines += [f"### Classifier: `{cls.get('model', 'mask_resnet10')}`, {cls['size']}x{cls['size']}, width {cls['width']}, {cls['params']} parameters, {cls['epochs']} epochs", "",
                  "| split | weights | n | accuracy | mask P / R | no-mask P / R | confusion [true][pred] (0 = no mask) |",
                  "|---|---|---|---|---|---|---|"]
        for k, r in cls.items():
            if not isinstance(r, dict):
                continue
            lines.append(f"| {k} | {'int8' if 'int8' in k else 'float'} | {r['n']} | {r['accuracy']:.4f} | {r['mask_precision']:.3f} / {r['mask_recall']:.3f} | {r['no_mask_precision']:.3f} / {r['no_mask_recall']:.3f} | {r['confusion[true][pred]']} |")
        lines += [""]
        for k, v in cls.items():
            if k.endswith("_incorrect_as_no_mask"):
                split = k[: -len("_incorrect_as_no_mask")]
                lines += [f"`mask_weared_incorrect` faces (chin / under-the-nose masks) read as no mask, {split}: {v}", ""]
        lines += [f"int8 invoke, 1 thread, Python TFLite interpreter (this x86 build machine): {cls['int8_invoke_ms_1thread_median']} ms", ""]
    else:
        lines += old_section(current, "### Classifier:")
    lines += ["### sha256", "", "| file | sha256 |", "|---|---|"]
    q = os.path.join(ROOT, "models", "quantized")
    for f in sorted(os.listdir(q)):
        if f.endswith(".tflite"):
            lines.append(f"| `{f}` | `{common.sha256(os.path.join(q, f))}` |")
    open(readme, "w").write(text[:a] + "\n" + "\n".join(lines) + "\n" + text[b:])
    print("\n".join(lines))


if __name__ == "__main__":
    main()
