"""Trains the mask / no-mask ResNet from scratch on detector crops, quantizes it to int8 and
measures float vs int8 on a held-out split and across sources. Run from tools/; the defaults are
the shipped recipe.

    python -m pipeline.classifier                      # ships models/quantized/mask_resnet_int8.tflite
    python -m pipeline.classifier --size 64 --width 16 --cross 0 --no-ship   # another size / width (report only)
    python -m pipeline.classifier --seed 1 --cross 0 --no-ship               # the recipe under another seed
    python -m pipeline.classifier --epochs 1 --cross 0 --no-ship             # smoke run (~2 min)

Experiments on the recipe (other bodies, ensembles, distillation, mixup, synthetic chin masks,
far faces...) are research/classifier_variants.py, which subclasses `Recipe`; they never ship.

Splits (after de-duplication in faces.py), grouped by source image so faces of one photo never
straddle splits: held-out = 80 / 10 / 10 train / val / test over both sources; cross-source =
train on one source, test on the other. Time: about 40 minutes on the 2-core build machine
(held-out model plus both cross-source directions, 30 epochs each).
"""
import argparse
import json
import os
import random
import time

import numpy as np
import tensorflow as tf

from pipeline import common

keras = tf.keras
WORK, OUT = common.WORK, common.OUT
# the shipped recipe
SIZE = 96  # crop side (px): the classifier's input tensor
WIDTH = 24  # channels of the first ResNet stage
EPOCHS = 30
# training weight of mask_weared_incorrect faces: only ~80 of them teach "a mask below the nose
# is no mask" (held-out, int8: 18 epochs at weight 1 read 1 of 9 as no mask; 30 at 4 read 8)
INCORRECT_WEIGHT = 4.0
MIN_FACE_PX = 40  # the kiosk's default decide.min_face_px: smaller faces are not judged
CLASSES = ["no_mask", "mask"]  # output index 1 = mask
# cross-source directions: "1" both, "0" none, "cls" / "scene" only the one trained on that source
CROSS_DIRS = {"1": (("cls", "scene"), ("scene", "cls")), "0": (), "cls": (("cls", "scene"),), "scene": (("scene", "cls"),)}


def seed_all(seed):
    # bit-reproducible training on CPU (oneDNN and tf.data otherwise vary from run to run)
    tf.config.experimental.enable_op_determinism()
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
    keras.utils.set_random_seed(seed)


def load_crops(faces, size):
    cache = {}
    xs = np.empty((len(faces), size, size, 3), np.uint8)
    for i, f in enumerate(faces):
        if f["path"] not in cache:
            cache.clear()
            cache[f["path"]] = common.load_rgb(f["path"])
        xs[i] = common.crop_square(cache[f["path"]], f["box"], size)
    return xs, np.array([f["label"] for f in faces], np.int64)


def splits(faces):
    groups = sorted({f["group"] for f in faces})
    random.Random(common.SEED).shuffle(groups)
    n = len(groups)
    part = {g: ("train" if i < 0.8 * n else "val" if i < 0.9 * n else "test") for i, g in enumerate(groups)}
    return {k: [f for f in faces if part[f["group"]] == k] for k in ("train", "val", "test")}


# --- augmentation fitting a door camera ---------------------------------------------------------
SKIN = tf.constant([[224, 172, 140], [198, 134, 66], [141, 85, 36], [255, 219, 172], [90, 56, 37]], tf.float32)


def hand_occlusion(x, s):
    """A skin-toned blob over the lower face: a hand over the mouth must not read as a mask."""
    yy, xx = tf.meshgrid(tf.range(s, dtype=tf.float32), tf.range(s, dtype=tf.float32), indexing="ij")
    cx = tf.random.uniform([], 0.3, 0.7) * s
    cy = tf.random.uniform([], 0.6, 0.85) * s
    rx = tf.random.uniform([], 0.15, 0.3) * s
    ry = tf.random.uniform([], 0.08, 0.18) * s
    m = tf.cast(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0, tf.float32)[..., None]
    tone = tf.gather(SKIN, tf.random.uniform([], 0, 5, tf.int32)) * tf.random.uniform([], 0.7, 1.1)
    return x * (1 - m) + tone * m


# --- model --------------------------------------------------------------------------------------
def basic_block(x, ch, stride):
    sc = x
    y = keras.layers.Conv2D(ch, 3, stride, padding="same", use_bias=False)(x)
    y = keras.layers.BatchNormalization()(y)
    y = keras.layers.ReLU()(y)
    y = keras.layers.Conv2D(ch, 3, 1, padding="same", use_bias=False)(y)
    y = keras.layers.BatchNormalization()(y)
    if stride != 1 or x.shape[-1] != ch:
        sc = keras.layers.Conv2D(ch, 1, stride, use_bias=False)(x)
        sc = keras.layers.BatchNormalization()(sc)
    return keras.layers.ReLU()(keras.layers.Add()([y, sc]))


def classifier_head(inp, x, name):
    """Global average pooling, dropout, 2-way softmax (index 1 = mask): shared by every body."""
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    out = keras.layers.Dense(2, activation="softmax")(x)
    return keras.Model(inp, out, name=name)


def resnet(size, width, pool=1):
    """ResNet-10-style: stem, four stages of one basic block (widths w, 2w, 4w, 8w), global
    average pooling, 2-way softmax. Input: RGB pixels 0..255; normalisation is inside. pool > 1
    (an experiment) averages pool x pool pixels first."""
    inp = keras.Input((size, size, 3), name="face_rgb")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inp)
    if pool > 1:
        x = keras.layers.AveragePooling2D(pool)(x)
    x = keras.layers.Conv2D(width, 3, 2, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    for i, m in enumerate((1, 2, 4, 8)):
        x = basic_block(x, width * m, 1 if i == 0 else 2)
    tag = f"p{pool}" if pool > 1 else ""
    return classifier_head(inp, x, f"mask_resnet10_{size}{tag}_w{width}")


# --- faces and weights --------------------------------------------------------------------------
def chin_masks(faces):
    """Chin / under-the-nose masks (VOC mask_weared_incorrect): labelled no mask, the faces a
    door must not let through and the scarcest in training."""
    return np.array([f.get("voc") == "mask_weared_incorrect" for f in faces])


def judged(faces):
    """Faces at least MIN_FACE_PX wide in their source image: the ones the kiosk judges."""
    return np.array([f["box"][2] - f["box"][0] >= MIN_FACE_PX for f in faces])


def weights(faces, incorrect_weight=INCORRECT_WEIGHT):
    """Per-face training weights (None when all are 1, which keeps the unweighted input pipeline)."""
    if incorrect_weight == 1:
        return None
    return np.where(chin_masks(faces), incorrect_weight, 1.0).astype(np.float32)


class Recipe:
    """The shipped training recipe. Each method is one decision of it; research/classifier_variants.py
    overrides them for experiments (the pipeline never imports research)."""

    soft_targets = False  # train on 2-vector targets (categorical loss) instead of class indices

    def __init__(self, size=SIZE, width=WIDTH, epochs=EPOCHS, incorrect_weight=INCORRECT_WEIGHT, seed=common.SEED):
        self.size, self.width, self.epochs = size, width, epochs
        self.incorrect_weight, self.seed = incorrect_weight, seed

    def weights(self, faces):
        return weights(faces, self.incorrect_weight)

    # data
    def face_augment(self, x):
        """Hook between the geometric and the photometric augmentation (identity when shipped)."""
        return x

    def augment(self, x, y):
        x = tf.cast(x, tf.float32)
        s = self.size
        # scale / crop jitter
        scale = tf.random.uniform([], 0.85, 1.0)
        c = tf.cast(tf.round(scale * s), tf.int32)
        x = tf.image.random_crop(x, [c, c, 3])
        x = tf.image.resize(x, [s, s])
        x = tf.image.random_flip_left_right(x)
        x = self.face_augment(x)
        # lighting and white balance
        x = x * tf.random.uniform([], 0.6, 1.4) + tf.random.uniform([], -30, 30)
        x = x * tf.random.uniform([1, 1, 3], 0.85, 1.15)
        x = tf.image.random_contrast(x, 0.7, 1.3)
        # blur
        if_blur = tf.random.uniform([]) < 0.25
        k = tf.constant([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
        k2 = tf.tile((k[:, None] * k[None, :])[:, :, None, None], [1, 1, 3, 1])
        blurred = tf.nn.depthwise_conv2d(x[None], k2, [1, 1, 1, 1], "SAME")[0]
        x = tf.where(if_blur, blurred, x)
        # hands over the mouth
        x = tf.cond(tf.random.uniform([]) < 0.2, lambda: hand_occlusion(x, s), lambda: x)
        x = tf.clip_by_value(x, 0, 255)
        # JPEG artefacts
        x = tf.cond(
            tf.random.uniform([]) < 0.3,
            lambda: tf.cast(tf.image.adjust_jpeg_quality(tf.cast(x, tf.uint8), tf.random.uniform([], 20, 70, tf.int32)), tf.float32),
            lambda: x,
        )
        x.set_shape([s, s, 3])
        return x, y

    def batch_maps(self):
        """Training batch transforms on (pixels, class index[, weight]) (none when shipped)."""
        return []

    def target_maps(self):
        """Training batch transforms on soft 2-vector targets, after batch_maps (none when shipped)."""
        return []

    def dataset(self, x, y, train, batch=64, w=None):
        """Batches of (pixels, label[, per-face training weight]). With soft_targets the label is
        one-hot, then target_maps in training; validation labels stay one-hot, so val_loss still
        scores the true labels."""
        ds = tf.data.Dataset.from_tensor_slices((x, y) if w is None else (x, y, w))
        if train:
            ds = ds.shuffle(len(x), seed=self.seed).map(lambda a, b, *c: (*self.augment(a, b), *c), num_parallel_calls=2)
        else:
            ds = ds.map(lambda a, b: (tf.cast(a, tf.float32), b))
        ds = ds.batch(batch)
        for f in self.batch_maps() if train else ():
            ds = ds.map(f)
        if self.soft_targets:
            ds = ds.map(lambda a, b, *c: (a, tf.one_hot(b, 2), *c))
        for f in self.target_maps() if train else ():
            ds = ds.map(f)
        return ds.prefetch(2)

    # model and training
    def build(self, arch=None):
        return resnet(self.size, self.width)

    def model_name(self, name):
        # its files in tools/work must not overwrite the default seed's
        return f"{name}_s{self.seed}" if self.seed != common.SEED else name

    def prepare(self):
        """Runs before each training's seeding (research loads a teacher here)."""

    def keep_best(self, epochs, xva, yva):
        """The epoch with the lowest validation loss (the validation split only selects)."""
        return keras.callbacks.EarlyStopping("val_loss", patience=epochs, restore_best_weights=True)

    def class_weight(self, ytr):
        return None

    def epochs_of(self, arch=None):
        return self.epochs

    def train(self, xtr, ytr, xva, yva, epochs, wtr=None, arch=None):
        self.prepare()
        seed_all(self.seed)
        model = self.build(arch)
        model.name = self.model_name(model.name)
        steps = epochs * int(np.ceil(len(xtr) / 64))
        lr = keras.optimizers.schedules.CosineDecay(2e-3, steps, alpha=0.02)
        loss, acc = "sparse_categorical_crossentropy", "accuracy"
        if self.soft_targets:
            loss, acc = "categorical_crossentropy", "categorical_accuracy"
        model.compile(keras.optimizers.AdamW(lr, weight_decay=1e-4), loss, metrics=[acc])
        model.fit(self.dataset(xtr, ytr, True, w=wtr), validation_data=self.dataset(xva, yva, False), epochs=epochs,
                  verbose=2, callbacks=[self.keep_best(epochs, xva, yva)], class_weight=self.class_weight(ytr))
        return model

    def fit(self, xtr, ytr, xva, yva, wtr, wva, report, prefix):
        """The model to quantize, and its members when it is an ensemble (else []); report and
        prefix let a variant record what it fitted."""
        return self.train(xtr, ytr, xva, yva, self.epochs_of(), wtr), []


# --- int8 and measuring -------------------------------------------------------------------------
def to_int8(model, calib):
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([c[None].astype(np.float32)] for c in calib)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def tflite_probs(data, x):
    it = tf.lite.Interpreter(model_content=data, num_threads=2)
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    (si, zi), (so, zo) = i["quantization"], o["quantization"]
    out = np.empty(len(x), np.float32)
    for k in range(len(x)):
        it.set_tensor(i["index"], np.clip(np.round(x[k] / si + zi), -128, 127).astype(np.int8)[None])
        it.invoke()
        out[k] = (it.get_tensor(o["index"])[0, 1].astype(np.float32) - zo) * so
    return out


def metrics(p_mask, y, thr=0.5):
    pred = (p_mask >= thr).astype(int)
    cm = [[int(((y == a) & (pred == b)).sum()) for b in (0, 1)] for a in (0, 1)]  # rows: true no_mask, mask
    res = {"n": int(len(y)), "accuracy": round(float((pred == y).mean()), 4), "confusion[true][pred]": cm}
    for c, name in enumerate(CLASSES):
        tp = cm[c][c]
        res[f"{name}_precision"] = round(tp / max(1, cm[0][c] + cm[1][c]), 4)
        res[f"{name}_recall"] = round(tp / max(1, sum(cm[c])), 4)
    return res


def subset_metrics(prefix, p, y, faces):
    """The same metrics by source, by face size and without chin masks, plus how many chin /
    under-the-nose masks read as no mask (what a door must do)."""
    large, inc = judged(faces), chin_masks(faces)
    subsets = {
        "cls": np.array([f["src"] == "cls" for f in faces]),
        "scene": np.array([f["src"] == "scene" for f in faces]),
        f"faces_ge{MIN_FACE_PX}px": large,
        f"faces_lt{MIN_FACE_PX}px": ~large,
        # the crops source has no chin masks at all, so a model trained on it alone cannot know them
        "without_incorrect": ~inc,
    }
    out = {}
    for k, sel in subsets.items():
        if 0 < sel.sum() < len(sel):
            out[f"{prefix}_{k}"] = metrics(p[sel], y[sel])
    out[f"{prefix}_incorrect_as_no_mask"] = f"{int((p[inc] < 0.5).sum())}/{int(inc.sum())}"
    return out


def float_probs(model, x):
    return model.predict(x.astype(np.float32), batch_size=128, verbose=0)[:, 1]


def member_metrics(prefix, members, x, y, probs):
    """Each ensemble member alone (float), so the report shows what combining adds."""
    out = {}
    for m in members:
        p = float_probs(m, x)
        probs[f"{prefix}_{m.name}"] = p
        out[f"{prefix}_member_{m.name}_float"] = metrics(p, y)
    return out


def held_out(recipe, faces, report, probs, tag=""):
    """Trains on the held-out split's training faces and measures float and int8 on its test
    faces; returns the model's name and its int8 flatbuffer."""
    sp = splits(faces)
    data = {k: load_crops(v, recipe.size) for k, v in sp.items()}
    print({k: len(v[0]) for k, v in data.items()}, flush=True)
    model, members = recipe.fit(*data["train"], *data["val"], recipe.weights(sp["train"]), recipe.weights(sp["val"]), report, "heldout")
    report["model"] = model.name
    report["params"] = int(model.count_params())
    # members' float weights, so another combination can be quantized and measured without retraining
    for m in members:
        m.save_weights(os.path.join(WORK, f"{m.name}{tag}.weights.h5"))
    calib = data["train"][0][np.random.default_rng(common.SEED).permutation(len(data["train"][0]))[:300]]
    q = to_int8(model, calib)
    xte, yte = data["test"]
    probs["heldout_test_y"] = yte
    report.update(member_metrics("heldout_test", members, xte, yte, probs))
    report["heldout_test_float"] = metrics(float_probs(model, xte), yte)
    p_te = tflite_probs(q, xte)
    probs["heldout_test_int8"] = p_te
    report["heldout_test_int8"] = metrics(p_te, yte)
    report.update(subset_metrics("heldout_test_int8", p_te, yte, sp["test"]))
    # latency of one int8 invoke (Python, 1 thread) for the size/width choice
    it = tf.lite.Interpreter(model_content=q, num_threads=1)
    it.allocate_tensors()
    ts = []
    for _ in range(200):
        t = time.perf_counter()
        it.invoke()
        ts.append(time.perf_counter() - t)
    report["int8_invoke_ms_1thread_median"] = round(1000 * float(np.median(ts)), 3)
    print(json.dumps(report, indent=1), flush=True)
    return model.name, q


def cross_source(recipe, faces, a, b, report, probs):
    """Trains on source a, tests on all of source b; returns the model's name."""
    key = f"cross_train_{a}_test_{b}"
    tr = [f for f in faces if f["src"] == a]
    te = [f for f in faces if f["src"] == b]
    trs = splits(tr)
    xa, ya = load_crops(trs["train"] + trs["test"], recipe.size)
    xv, yv = load_crops(trs["val"], recipe.size)
    xb, yb = load_crops(te, recipe.size)
    m, ms = recipe.fit(xa, ya, xv, yv, recipe.weights(trs["train"] + trs["test"]), recipe.weights(trs["val"]), report, key)
    qb = to_int8(m, xa[:300])
    probs[f"{key}_y"] = yb
    report.update(member_metrics(key, ms, xb, yb, probs))
    report[f"{key}_float"] = metrics(float_probs(m, xb), yb)
    pb = tflite_probs(qb, xb)
    probs[f"{key}_int8"] = pb
    report[f"{key}_int8"] = metrics(pb, yb)
    report.update(subset_metrics(f"{key}_int8", pb, yb, te))
    print(a, "->", b, report[f"{key}_int8"], flush=True)
    return m.name


def run(recipe, ship=True, cross="1", heldout=True, tag=""):
    """The held-out model (shipped when ship) and the cross-source directions; the report and the
    per-face probabilities go to tools/work/{model}{tag}_report.json / _probs.npz."""
    t0 = time.time()
    seed_all(recipe.seed)
    faces = json.load(open(os.path.join(WORK, "faces.json")))["faces"]
    report = {"size": recipe.size, "width": recipe.width, "epochs": recipe.epochs_of(), "incorrect_weight": recipe.incorrect_weight}
    probs = {}  # per-face probabilities, for analysis without retraining
    name, q = held_out(recipe, faces, report, probs, tag) if heldout else (None, None)
    # cross-source generalisation: train on one source, test on all of the other
    for a, b in CROSS_DIRS[cross]:
        m = cross_source(recipe, faces, a, b, report, probs)
        name = name or m
    name += tag
    report["seconds"] = round(time.time() - t0)
    os.makedirs(WORK, exist_ok=True)
    json.dump(report, open(os.path.join(WORK, f"{name}_report.json"), "w"), indent=1)
    np.savez(os.path.join(WORK, f"{name}_probs.npz"), **probs)
    if ship:
        with open(os.path.join(OUT, "mask_resnet_int8.tflite"), "wb") as f:
            f.write(q)
        json.dump(report, open(os.path.join(WORK, "classifier_report.json"), "w"), indent=1)
    print(json.dumps(report, indent=1))


def add_arguments(p):
    """The recipe's and the run's flags (research/classifier_variants.py adds its own)."""
    p.add_argument("--size", type=int, default=SIZE, help="crop side in px (the model's input)")
    p.add_argument("--width", type=int, default=WIDTH, help="channels of the first ResNet stage")
    p.add_argument("--epochs", type=int, default=EPOCHS, help="training epochs (1 for a smoke run)")
    p.add_argument("--incorrect-weight", type=float, default=INCORRECT_WEIGHT, help="training weight of chin / under-the-nose masks")
    p.add_argument("--seed", type=int, default=common.SEED, help="initialisation, augmentation and shuffling (never the splits or calibration)")
    p.add_argument("--cross", choices=tuple(CROSS_DIRS), default="1",
                   help="cross-source runs: 1 both directions, 0 none, cls / scene only the one trained on that source")
    p.add_argument("--no-heldout", dest="heldout", action="store_false",
                   help="skip the held-out model and measure only the --cross direction(s) (needs --no-ship)")
    p.add_argument("--tag", default="", help="suffix of this run's file names in tools/work")


def check_arguments(p, a):
    if a.size < 32 or a.width < 1 or a.epochs < 1 or a.incorrect_weight <= 0:
        p.error("--size >= 32, --width >= 1, --epochs >= 1 and --incorrect-weight > 0")
    if not a.heldout and (a.ship or a.cross == "0"):
        p.error("--no-heldout needs --no-ship and --cross 1, cls or scene: the shipped model is the held-out one")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(p)
    p.add_argument("--no-ship", dest="ship", action="store_false", help="report only: leave models/quantized/ as it is")
    a = p.parse_args(argv)
    check_arguments(p, a)
    run(Recipe(a.size, a.width, a.epochs, a.incorrect_weight, a.seed), a.ship, a.cross, a.heldout, a.tag)


if __name__ == "__main__":
    main()
