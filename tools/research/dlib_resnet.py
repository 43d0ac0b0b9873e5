"""What a face-pretrained ResNet knows about masks: dlib's face-recognition network as a body.

No ImageNet-pretrained ResNet is obtainable here, but PyPI's face_recognition_models 0.3.0
ships dlib's face-recognition ResNet (Davis King, public domain / CC0): 29 convolutions in
residual blocks, global average pooling, a 128-d descriptor, trained on about 3 million faces
(dlib's dnn_face_recognition_ex). This script reads its weights from the .dat file with numpy
alone, rebuilds the network in Keras (checked against dlib itself), and measures its features
on the classifier's faces, cropped by the product's framing (common.crop_square) at 150 px:

  python -m research.dlib_resnet verify    # the Keras rebuild against dlib's own descriptors
  python -m research.dlib_resnet features  # level maps of every face -> tools/work/dlib_levels.npz
  python -m research.dlib_resnet probe     # a linear probe per level, 10-fold grouped CV
  python -m research.dlib_resnet head      # a residual head on the frozen level-2 maps
  python -m research.dlib_resnet pair      # the recipe and the level-2 probe averaged, by threshold
  python -m research.dlib_resnet int8      # int8 body vs float; per-face latency vs the shipped model

Run from tools/ (tools/.venv with research/requirements.txt). It needs tools/work/faces.json
(pipeline.faces) and tools/work/crops96.npz (research.sweep prepare) for the
labels, splits and weights; `features` writes a 420 MB file that the other commands read, and
`pair` reads the level-2 probe that `probe` saves. The folds are sweep.py's cv_folds, so every
result pairs face by face with the recipe's cross-validated P(mask) (tools/work/sweep/
run1_probs.npz, job cv_w24, when present). It is a measuring tool: nothing here ships.
models/README.md gives the measured tables.
"""

import importlib.util
import json
import os
import sys
import time

import numpy as np

from research.stats import logistic, mcnemar, wilson
from research.sweep import CROPS, WORK, cross, cv_folds

SIZE = 150  # dlib's input_rgb_image_sized<150>
MEAN = np.array([122.782, 117.001, 104.298], np.float32)  # dlib's input layer: (pixel - mean) / 256
LEVELS = os.path.join(WORK, "dlib_levels.npz")
# blocks per level (dlib's alevel4 .. alevel0) and whether the level starts by halving
STAGES = ((3, False), (4, True), (3, True), (3, True), (1, True))


def dat_path():
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None:
        sys.exit("pip install face_recognition_models==0.3.0 (tools/research/requirements.txt)")
    return os.path.join(spec.submodule_search_locations[0], "models", "dlib_face_recognition_resnet_model_v1.dat")


# --- dlib's serialization, as far as this network needs it ---------------------------------------
def _int(b, i):
    """dlib's integer: a byte holding the length (low nibble) and sign (0x80), then little-endian bytes."""
    n = b[i] & 0x0F
    v = int.from_bytes(b[i + 1:i + 1 + n], "little")
    return (-v if b[i] & 0x80 else v), i + 1 + n


def _tensor(b, i):
    """A version-2 tensor: version, 4 dimensions, then raw little-endian float32."""
    ver, i = _int(b, i)
    if ver != 2:
        raise ValueError(f"tensor version {ver} at byte {i}")
    dims = []
    for _ in range(4):
        v, i = _int(b, i)
        dims.append(v)
    n = int(np.prod(dims))
    return np.frombuffer(b[i:i + 4 * n], "<f4").copy(), i + 4 * n


def read_dat(path):
    """The parameter layers in file order (input side first): ("con_4", params, [filters, rows,
    cols, stride_y, stride_x, pad_y, pad_x]), ("affine_", params, []), ("fc_2", params, [])."""
    b = open(path, "rb").read()
    found = []
    for name in (b"con_4", b"affine_", b"fc_2"):
        at = b.find(name)
        while at >= 0:
            # a serialized string is its length (a one-byte dlib int: 0x01, n) then its bytes
            if b[at - 2] == 1 and b[at - 1] == len(name):
                i = at + len(name)
                if name == b"fc_2":  # fc_ writes num_outputs and num_inputs before its params
                    i = _int(b, _int(b, i)[1])[1]
                p, i = _tensor(b, i)
                ints = []
                for _ in range(7 if name == b"con_4" else 0):
                    v, i = _int(b, i)
                    ints.append(v)
                found.append((at, name.decode(), p, ints))
            at = b.find(name, at + 1)
    return [f[1:] for f in sorted(found, key=lambda f: f[0])]


def weights(path):
    """Convolutions with their affine (dlib's frozen batch norm) folded in, as (HWIO kernel, bias,
    stride, padded), and the 256 x 128 descriptor matrix."""
    layers = read_dat(path)
    convs = []
    for (n1, p, ints), (n2, a, _) in zip(layers[0:-1:2], layers[1:-1:2]):
        assert (n1, n2) == ("con_4", "affine_"), (n1, n2)
        nf, nr, nc, sy, _, py, _ = ints
        k = (p.size - nf) // (nf * nr * nc)
        w = p[: nf * k * nr * nc].reshape(nf, k, nr, nc).transpose(2, 3, 1, 0)
        g, beta = a[: nf], a[nf:]
        convs.append((w * g, g * p[nf * k * nr * nc:] + beta, sy, py > 0))
    assert len(convs) == 29 and layers[-1][0] == "fc_2"
    return convs, layers[-1][1].reshape(256, 128)


def build(upto=None, size=SIZE):
    """dlib's anet_type in Keras. Outputs: every level's map (upto=None: and the 128-d
    descriptor), or only the map of level `upto` (0 = alevel4 at 35 x 35 ... 4 = alevel0)."""
    import keras
    from keras import ops

    convs, fc = weights(dat_path())
    inp = keras.Input((size, size, 3), name="face_rgb")
    x = (inp - MEAN) / 256.0
    it = iter(convs)

    def conv(x, relu):
        w, b, stride, padded = next(it)
        layer = keras.layers.Conv2D(w.shape[3], w.shape[0], strides=stride, padding="same" if padded else "valid")
        y = layer(x)
        layer.set_weights([w, b])
        return keras.layers.ReLU()(y) if relu else y

    def block(x, down):
        h = conv(conv(x, True), False)
        if not down:
            return keras.layers.ReLU()(h + x)
        # dlib's residual_down adds a 2x2 average of the input; add_prev takes the larger of each
        # dimension and zero-fills the smaller tensor at the end (3x3 + 4x4 -> 4x4, 128 + 256 ch)
        sc = keras.layers.AveragePooling2D(2, 2)(x)
        hw, ch = max(sc.shape[1], h.shape[1]), max(sc.shape[3], h.shape[3])
        pad = lambda t: ops.pad(t, [[0, 0], [0, hw - t.shape[1]], [0, hw - t.shape[2]], [0, ch - t.shape[3]]])  # noqa: E731
        return keras.layers.ReLU()(pad(h) + pad(sc))

    x = keras.layers.MaxPool2D(3, 2)(conv(x, True))
    levels = []
    for n, down in STAGES:
        for i in range(n):
            x = block(x, down and i == 0)
        levels.append(x)
        if upto is not None and len(levels) > upto:
            return keras.Model(inp, x, name=f"dlib_level{upto}")
    desc = ops.matmul(ops.mean(x, axis=(1, 2)), fc)
    return keras.Model(inp, levels + [desc], name="dlib_resnet")


# --- data -----------------------------------------------------------------------------------------
def faces():
    return json.load(open(os.path.join(WORK, "faces.json")))["faces"]


def crops():
    """Every face of faces.json framed as the product frames it, at 150 px."""
    from pipeline import classifier

    return classifier.load_crops(faces(), SIZE)[0]


def meta():
    m = np.load(CROPS)
    return {k: m[k] for k in ("y", "scene", "group", "chin", "judged", "weight", "split")}


def recipe_cv(n):
    """The shipped recipe's 10-fold cross-validated P(mask) of the n faces (sweep.py job cv_w24), if saved."""
    path = os.path.join(WORK, "sweep", "run1_probs.npz")
    if not os.path.exists(path):
        return None
    z = np.load(path)
    p = np.full(n, np.nan)
    for i in range(10):
        p[z[f"cv_w24/{i}/test"]] = z[f"cv_w24/{i}/p"]
    return p


def grid(t, g):
    """Mean of each cell of a g x g grid: keeps where on the face a feature fires."""
    h, w = t.shape[1:3]
    return np.concatenate([t[:, a * h // g:(a + 1) * h // g, c * w // g:(c + 1) * w // g].mean((1, 2)) for a in range(g) for c in range(g)], 1)


def row(name, p, d, base):
    """Accuracy [95 %], faces >= 40 px, scenes, crops, chin masks caught, and the pairing with
    the recipe (faces right only there / only here, exact McNemar)."""
    y, j, ch = d["y"] == 1, d["judged"], d["chin"]
    ok = (p >= 0.5) == y
    lo, hi = wilson(int(ok.sum()), len(ok))
    s = (f"{name:30s} {100 * ok.mean():6.2f} [{100 * lo:.2f}, {100 * hi:.2f}] {100 * ok[j].mean():7.2f} {100 * ok[d['scene']].mean():7.2f}"
         f" {100 * ok[~d['scene']].mean():7.2f} {int((p[ch] < 0.5).sum()):4d}/{int(ch.sum())} {int((p[ch & j] < 0.5).sum()):4d}/{int((ch & j).sum())}")
    if base is not None:
        bo = (base >= 0.5) == y
        b, c = int((bo & ~ok).sum()), int((~bo & ok).sum())
        s += f"   {b} / {c}, p = {mcnemar(b, c):.2g}"
    print(s, flush=True)


HEADER = f"{'10-fold grouped CV':30s} {'accuracy [95 %]':>22s} {'>= 40 px':>7s} {'scenes':>7s} {'crops':>7s} {'chin':>9s} {'chin>=40':>9s}   vs recipe: b / c, McNemar"


def cross_splits(d):
    """Train on one source, test on all of the other: sweep.py's first cross-source repetition."""
    return {"crops -> scenes": cross(d, False, 1)[0], "scenes -> crops": cross(d, True, 1)[0]}


# --- commands -------------------------------------------------------------------------------------
def verify(n=8):
    """Largest difference between the Keras rebuild's descriptor and dlib's on n faces."""
    import dlib

    x = crops()[:: len(faces()) // n][:n]
    ref = dlib.face_recognition_model_v1(dat_path())
    want = np.array([np.array(ref.compute_face_descriptor(c)) for c in x])
    got = build().predict(x.astype(np.float32), verbose=0)[-1]
    print(f"{n} faces: descriptor norm {np.linalg.norm(want, axis=1).mean():.3f}, largest |keras - dlib| {np.abs(got - want).max():.2e}")


def features():
    """Each level's map pooled over a g x g grid, and the level-2 maps themselves (8 x 8 x 128,
    float16) of every face and of its mirror image, for the head."""
    x = crops()
    model = build()
    out = {}
    for i in range(0, len(x), 256):
        maps = model.predict(x[i:i + 256].astype(np.float32), verbose=0)
        for lv, t in enumerate(maps[:-1]):
            for g in (1, 2, 3):
                if g <= t.shape[1] and not (lv == 4 and g > 1):  # level 4: a 1 x 1 block output added to a 2 x 2 average
                    out.setdefault(f"L{lv}g{g}", []).append(grid(t, g))
        out.setdefault("desc", []).append(maps[-1])
        out.setdefault("L2", []).append(maps[2].astype(np.float16))
    flip = build(upto=2)
    out["L2_mirror"] = [flip.predict(x[i:i + 256, :, ::-1].astype(np.float32), verbose=0).astype(np.float16) for i in range(0, len(x), 256)]
    np.savez(LEVELS, **{k: np.concatenate(v) for k, v in out.items()})
    print({k: np.concatenate(v).shape for k, v in out.items()})


def probe_fit(x, d, tr, va):
    """The penalty with the lowest validation log-loss; returns P(mask) as a function."""
    mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-6
    z = (x - mu) / sd
    X = np.c_[z[tr], np.ones(len(tr))]  # standardised features and an intercept
    y, w = (d["y"] == 1).astype(float), d["weight"].astype(float)
    best, th = None, None
    for lam in (3000.0, 1000.0, 300.0, 100.0, 30.0, 10.0, 3.0, 1.0):  # strongest first, each warm-starts the next
        th = logistic(X, y[tr], w[tr], np.r_[np.full(x.shape[1], lam), 0.0], th, iters=50, tol=1e-6)
        pv = np.clip(1 / (1 + np.exp(-(z[va] @ th[:-1] + th[-1]))), 1e-6, 1 - 1e-6)
        loss = -np.mean(y[va] * np.log(pv) + (1 - y[va]) * np.log(1 - pv))
        if best is None or loss < best[0]:
            best = (loss, th, lam)
    th = best[1]
    return (lambda idx: 1 / (1 + np.exp(-(z[idx] @ th[:-1] + th[-1])))), best[2]


def probe():
    d = meta()
    base = recipe_cv(len(d["y"]))
    f = np.load(LEVELS)
    print(HEADER)
    if base is not None:
        row("recipe (sweep cv_w24)", base, d, base)
    for key in ("desc", "L4g1", "L3g1", "L3g2", "L2g2", "L2g3"):
        x = f[key].astype(np.float64)
        p = np.empty(len(x))
        for tr, va, te in cv_folds(d):
            fn, _ = probe_fit(x, d, tr, va)
            p[te] = fn(te)
        row(f"linear probe {key} ({x.shape[1]})", p, d, base)
        if base is not None:
            row("  mean with the recipe", (p + base) / 2, d, base)
        np.save(os.path.join(WORK, f"dlib_probe_{key}.npy"), p)
    print(f"(level n: dlib's alevel{4} .. alevel0 output; gk: its map averaged over a k x k grid)")


def pair():
    """The recipe's P(mask) averaged with the level-2 probe's (L2g2), by decision threshold: on
    the 10-fold cross-validation (after probe) and on the held-out split, where the probe is
    fitted on the training split and the recipe is the shipped int8 model."""
    d = meta()
    base = recipe_cv(len(d["y"]))
    if base is None:
        sys.exit("pair: no tools/work/sweep/run1_probs.npz (sweep.py run cv_w24 cross_cls_to_scene, on a GPU)")
    y, j, ch = d["y"] == 1, d["judged"], d["chin"]
    x = np.load(LEVELS)["L2g2"].astype(np.float64)
    tr, va, te = (np.flatnonzero(d["split"] == s) for s in (0, 1, 2))
    fn, lam = probe_fit(x, d, tr, va)
    held = {"probe": fn(te), "shipped": shipped_int8(te)}
    held["mean"] = (held["probe"] + held["shipped"]) / 2
    cv = {"recipe": base, "mean": (np.load(os.path.join(WORK, "dlib_probe_L2g2.npy")) + base) / 2}
    print(f"{'':28s} {'thr':>4s} {'accuracy':>8s} {'>= 40 px':>8s} {'chin':>7s} {'chin>=40':>8s} {'masked>=40 as no mask':>22s} {'unmasked>=40 as mask':>21s}")
    for split, idx, runs in (("10-fold CV", np.arange(len(y)), cv), ("held-out split", te, held)):
        for name, p in runs.items():
            for t in (0.5, 0.6, 0.7, 0.8):
                pred, yy, jj, cc = p >= t, y[idx], j[idx], ch[idx]
                ok = pred == yy
                print(f"{split + ', ' + name:28s} {t:4.1f} {100 * ok.mean():8.2f} {100 * ok[jj].mean():8.2f} {int((p[cc] < t).sum()):3d}/{int(cc.sum()):<3d}"
                      f" {int((p[cc & jj] < t).sum()):4d}/{int((cc & jj).sum()):<3d} {int((~pred & yy & jj).sum()):15d}/{int((yy & jj).sum())} {int((pred & ~yy & jj).sum()):14d}/{int((~yy & jj).sum())}")
    print(f"(held-out probe: penalty {lam:g})")
    # across sources: the probe against the recipe's first cross-source run in sweep.py (same split)
    saved = [np.load(f) for f in (os.path.join(WORK, "sweep", f"run{r}_probs.npz") for r in (1, 2)) if os.path.exists(f)]
    for (label, (tr, va, te)), job in zip(cross_splits(d).items(), ("cross_cls_to_scene", "cross_scene_to_cls")):
        z = next((z for z in saved if f"{job}/0/p" in z.files), None)
        p = probe_fit(x, d, tr, va)[0](te)
        runs = {"probe": p}
        if z is not None and np.array_equal(z[f"{job}/0/test"], te):
            runs.update({"recipe": z[f"{job}/0/p"], "mean": (p + z[f"{job}/0/p"]) / 2})
        print(f"{label}: " + ", ".join(f"{k} {100 * ((v >= 0.5) == y[te]).mean():.2f} % (without chin masks {100 * ((v >= 0.5) == y[te])[~ch[te]].mean():.2f} %)" for k, v in runs.items()))


def head_model(width=256):
    """One ResNet basic block (stride 2) on the 8 x 8 x 128 level-2 map, global average pooling,
    dropout, a 2-way softmax: the part trained for masks on top of the frozen face body."""
    import keras

    from pipeline import classifier

    inp = keras.Input((8, 8, 128))
    x = keras.layers.GlobalAveragePooling2D()(classifier.basic_block(inp, width, 2))
    return keras.Model(inp, keras.layers.Dense(2, activation="softmax")(keras.layers.Dropout(0.3)(x)))


def train_head(maps, mirror, d, tr, va, epochs, seed=0):
    """AdamW, cosine decay from 1e-3, batch 64, chin masks weighted as classifier.py weights them,
    each face mirrored with probability 0.5 per epoch; the epoch with the lowest validation loss kept."""
    import keras

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = head_model()
    sched = keras.optimizers.schedules.CosineDecay(1e-3, epochs * int(np.ceil(len(tr) / 64)), alpha=0.02)
    model.compile(keras.optimizers.AdamW(sched, weight_decay=1e-3), "sparse_categorical_crossentropy")
    y = d["y"].astype(np.int32)
    best = (np.inf, None)
    for _ in range(epochs):
        x = np.where((rng.random(len(tr)) < 0.5)[:, None, None, None], mirror[tr], maps[tr]).astype(np.float32)
        model.fit(x, y[tr], sample_weight=d["weight"][tr], batch_size=64, epochs=1, verbose=0)
        loss = model.evaluate(maps[va].astype(np.float32), y[va], batch_size=256, verbose=0)
        if loss < best[0]:
            best = (loss, model.get_weights())
    model.set_weights(best[1])
    model.p_mask = lambda idx: model.predict(maps[idx].astype(np.float32), batch_size=256, verbose=0)[:, 1]
    return model


def head(epochs=int(os.environ.get("EPOCHS", "15"))):
    d = meta()
    base = recipe_cv(len(d["y"]))
    f = np.load(LEVELS)
    maps, mirror = f["L2"], f["L2_mirror"]
    t0 = time.time()
    p = np.empty(len(maps))
    for k, (tr, va, te) in enumerate(cv_folds(d)):
        p[te] = train_head(maps, mirror, d, tr, va, epochs).p_mask(te)
        print(f"fold {k} {time.time() - t0:.0f} s", flush=True)
    np.save(os.path.join(WORK, "dlib_head_cv.npy"), p)
    print(HEADER)
    if base is not None:
        row("recipe (sweep cv_w24)", base, d, base)
    row("level-2 maps + residual head", p, d, base)
    if base is not None:
        row("  mean with the recipe", (p + base) / 2, d, base)
    y = d["y"] == 1
    for label, (tr, va, te) in cross_splits(d).items():
        q = train_head(maps, mirror, d, tr, va, epochs).p_mask(te)
        ok = (q >= 0.5) == y[te]
        print(f"{label}: {100 * ok.mean():.2f} % (without chin masks {100 * ok[~d['chin'][te]].mean():.2f} %)", flush=True)
    tr, va, te = (np.flatnonzero(d["split"] == s) for s in (0, 1, 2))
    q = train_head(maps, mirror, d, tr, va, epochs).p_mask(te)
    shipped = shipped_int8(te)
    for label, pm in (("head (float)", q), ("shipped ResNet (int8)", shipped), ("mean of both", (q + shipped) / 2)):
        held_out_line(label, pm, d, te)
    print(f"{time.time() - t0:.0f} s in all")


def held_out_line(label, p, d, te):
    """Accuracy, errors, faces >= 40 px and chin masks caught of P(mask) p on the held-out faces te."""
    ok = (p >= 0.5) == (d["y"][te] == 1)
    print(f"held-out split, {label}: {100 * ok.mean():.2f} % ({int((~ok).sum())} errors of {len(te)}), faces >= 40 px {100 * ok[d['judged'][te]].mean():.2f} %,"
          f" chin masks caught {int((p[d['chin'][te]] < 0.5).sum())}/{int(d['chin'][te].sum())}")


def shipped_int8(idx):
    """The shipped model's int8 P(mask) on faces idx, cropped at its own 96 px as classifier.py crops."""
    from pipeline import classifier

    fs = faces()
    x, _ = classifier.load_crops([fs[i] for i in idx], classifier.SIZE)
    return classifier.tflite_probs(open(os.path.join(classifier.OUT, "mask_resnet_int8.tflite"), "rb").read(), x)


def int8():
    """The body up to level 2 and the head trained on the held-out split's training faces, in one
    graph quantized as classifier.py quantizes (300 training faces calibrate): held-out accuracy
    float vs int8, how far its int8 level-2 map is from float, and one invoke per face (1 thread,
    median of 300, side by side with the shipped model)."""
    import keras
    import tensorflow as tf

    from pipeline import classifier

    x, d = crops(), meta()
    f = np.load(LEVELS)
    tr, va, te = (np.flatnonzero(d["split"] == s) for s in (0, 1, 2))
    trained = train_head(f["L2"], f["L2_mirror"], d, tr, va, int(os.environ.get("EPOCHS", "15")))
    body = build(upto=2)
    inp = keras.Input((SIZE, SIZE, 3), name="face_rgb")
    maps = body(inp)
    model = keras.Model(inp, [trained(maps), maps])
    rng = np.random.default_rng(1234)
    q = classifier.to_int8(model, x[tr[rng.permutation(len(tr))[:300]]])
    it = tf.lite.Interpreter(model_content=q, num_threads=1)
    it.allocate_tensors()
    i = it.get_input_details()[0]
    o = next(o for o in it.get_output_details() if len(o["shape"]) == 4)
    po = next(o for o in it.get_output_details() if len(o["shape"]) == 2)
    (si, zi), (so, zo), (sp, zp) = i["quantization"], o["quantization"], po["quantization"]
    want = body.predict(x[te[:200]].astype(np.float32), verbose=0)
    cos, p8 = [], np.empty(len(te))
    for k, idx in enumerate(te):  # one invoke per face: its P(mask), and for the first 200 its map
        it.set_tensor(i["index"], np.clip(np.round(x[idx] / si + zi), -128, 127).astype(np.int8)[None])
        it.invoke()
        p8[k] = (it.get_tensor(po["index"])[0, 1].astype(np.float32) - zp) * sp
        if k < len(want):
            a, b = want[k].ravel(), ((it.get_tensor(o["index"])[0].astype(np.float32) - zo) * so).ravel()
            cos.append(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    print(f"level-2 map, int8 vs float on 200 held-out faces: cosine median {np.median(cos):.4f}, lowest {np.min(cos):.4f}; {len(q)} bytes")
    held_out_line("head float", trained.p_mask(te), d, te)
    held_out_line("head int8", p8, d, te)
    shipped = open(os.path.join(classifier.OUT, "mask_resnet_int8.tflite"), "rb").read()
    its = {"shipped ResNet-10 96 px": tf.lite.Interpreter(model_content=shipped, num_threads=1), "dlib body to level 2 + head, 150 px": tf.lite.Interpreter(model_content=q, num_threads=1)}
    ts = {k: [] for k in its}
    for t in its.values():
        t.allocate_tensors()
    for _ in range(300):
        for k, t in its.items():
            s = time.perf_counter()
            t.invoke()
            ts[k].append(time.perf_counter() - s)
    for k, v in ts.items():
        print(f"{k}: {1000 * np.median(v):.2f} ms per face (int8, 1 thread, median of 300)")


if __name__ == "__main__":
    cmds = {"verify": verify, "features": features, "probe": probe, "pair": pair, "head": head, "int8": int8}
    if len(sys.argv) != 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]]()
