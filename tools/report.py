"""Writes the measured numbers and sha256 of the shipped models into models/README.md, between
the `metrics:begin` / `metrics:end` markers, from tools/work/*.json; a section whose json is
absent (a partial rebuild) keeps its current text."""
import json
import os

import common

ROOT = os.path.join(os.path.dirname(__file__), "..")
WORK = os.path.join(os.path.dirname(__file__), "work")
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


def main():
    readme = os.path.join(ROOT, "models", "README.md")
    text = open(readme).read()
    a, b = text.index(BEGIN) + len(BEGIN), text.index(END)
    current = text[a:b].split("\n")
    lines = []
    det = load("detector_eval.json")
    if det:
        lines += ["### Detector: face AP@0.5 on the 853-image scene set (all labelled faces, any mask class)", "",
                  "| input | weights | subset | images | faces | AP@0.5 | recall (any score) | recall @ score 0.5 |",
                  "|---|---|---|---|---|---|---|---|"]
        for k, r in det.items():
            size, kind, subset = k.split("_")
            kind = {'int8': 'int8 (Python TFLite)', 'int8-maskgate': '**int8, shipped runtime (maskgate)**'}.get(kind, kind)
            lines.append(f"| {size} | {kind} | {subset} | {r['images']} | {r['faces']} | {r['ap50']:.4f} | {r['recall_any_score']:.4f} | {r['recall_at_0.5']:.4f} |")
        lines.append("")
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
