"""Many classifier trainings at once, to measure what one held-out split cannot resolve.

The held-out split has 699 faces: it pins an accuracy near 98 % to about +-1.1 points, and each
training run moves by a point with its seed. This script trains the shipped ResNet recipe many
times side by side (JAX, one model per seed or fold, vmapped), so that
  - seeds: the fixed held-out split under several seeds gives the recipe's spread there;
  - cv: 10-fold grouped cross-validation scores every one of the 6868 faces (and all 100 chin
    masks) once, pinning the recipe's accuracy to about +-0.4 points;
  - variants (width, epochs, training share) are compared on the same 6868 faces, paired.

It is a measuring tool, not the shipping pipeline: pipeline/classifier.py (TensorFlow) trains and
quantizes the shipped model. The port keeps the recipe (architecture, Keras initialisers, AdamW
with cosine decay from 2e-3, batch 64, chin masks weighted 4, the epoch with the lowest
validation loss kept, and the augmentation) except JPEG artefacts, which have no JAX op; and it
scores float weights (int8 stays within 0.3 points of float in every classifier.py run).

  cd tools   # then:
  .venv/bin/python -m research.sweep prepare     # crops -> tools/work/crops96.npz (JPEG q92, 27 MB)
  python3 -m venv .venv-sweep && .venv-sweep/bin/pip install -r research/requirements-sweep.txt
  .venv-sweep/bin/python -m research.sweep run [JOB ...]   # all jobs of jobs() when none named
  .venv-sweep/bin/python -m research.sweep report work/sweep/sweep_probs.npz ...

`run` writes sweep_probs.npz (per-face P(mask) of every model) and sweep_report.json to
$SWEEP_OUT (default tools/work/sweep) after every job, so a run cut short keeps what it finished.
Speed: on one H200 (the machine's own JAX 0.11.2 with CUDA 13) a 10-fold job takes 1-4
minutes. On a 2-core CPU, XLA runs the scanned training loop at about 70 s a step, so a job
would take days: there, `SMOKE=1` runs 2 epochs of 3 steps for 2 models of each job (about
7 minutes a job) to check the whole path. models/README.md gives the measured tables.
"""

import io
import json
import math
import os
import sys
import time

import numpy as np

from pipeline import common
from research.stats import mcnemar, wilson

WORK = common.WORK
CROPS = os.environ.get("CROPS", os.path.join(WORK, "crops96.npz"))
OUTDIR = os.environ.get("SWEEP_OUT", os.path.join(WORK, "sweep"))  # not tools/work: compare.py reads its *_probs.npz
SIZE = 96
BATCH = 64
SMOKE = os.environ.get("SMOKE") == "1"  # a few steps of every job, to check the script on CPU


def prepare():
    """Crops every face of faces.json exactly as classifier.py does, with its split, source,
    group, chin-mask and judged flags and its training weight (classifier.weights), stored as JPEG (q92, 4:4:4, mean error 1.1 levels) so
    that the file can travel to an accelerator machine."""
    from PIL import Image

    from pipeline import classifier as C

    faces = json.load(open(os.path.join(WORK, "faces.json")))["faces"]
    part = {}
    for k, v in C.splits(faces).items():
        for f in v:
            part[id(f)] = ("train", "val", "test").index(k)
    x, y = C.load_crops(faces, SIZE)
    groups = {g: i for i, g in enumerate(sorted({f["group"] for f in faces}))}
    w = C.weights(faces)  # per-face training weight, as classifier.py trains (chin masks x INCORRECT_WEIGHT)
    blobs = []
    for im in x:
        b = io.BytesIO()
        Image.fromarray(im).save(b, "JPEG", quality=92, subsampling=0)
        blobs.append(b.getvalue())
    np.savez(
        CROPS,
        jpeg=np.frombuffer(b"".join(blobs), np.uint8),
        offsets=np.concatenate([[0], np.cumsum([len(b) for b in blobs])]),
        y=y,
        scene=np.array([f["src"] == "scene" for f in faces]),
        group=np.array([groups[f["group"]] for f in faces], np.int32),
        chin=C.chin_masks(faces),
        judged=C.judged(faces),
        weight=np.ones(len(faces), np.float32) if w is None else w,
        split=np.array([part[id(f)] for f in faces], np.uint8),
    )
    print(CROPS, os.path.getsize(CROPS), "bytes,", len(x), "faces")


def load():
    from PIL import Image

    d = dict(np.load(CROPS))
    jp, off = d.pop("jpeg"), d.pop("offsets")
    d["x"] = np.stack([np.asarray(Image.open(io.BytesIO(jp[off[i]:off[i + 1]].tobytes())).convert("RGB")) for i in range(len(off) - 1)])
    return d


# --- jobs: which faces each model trains, selects and is tested on ---------------------------------
def cv_folds(d, k=10, seed=1234):
    """Grouped k-fold: fold i tests on group share i, selects the epoch on share i+1, trains on
    the rest, so every face is tested exactly once and never next to a near copy of itself."""
    groups = np.unique(d["group"])
    rng = np.random.default_rng(seed)
    fold_of = dict(zip(rng.permutation(groups), np.arange(len(groups)) % k))
    f = np.array([fold_of[g] for g in d["group"]])
    return [(np.flatnonzero((f != i) & (f != (i + 1) % k)), np.flatnonzero(f == (i + 1) % k), np.flatnonzero(f == i)) for i in range(k)]


def subsample(d, models, share, seed):
    """Keeps `share` of each model's training groups (learning curve)."""
    rng = np.random.default_rng(seed)
    out = []
    for tr, va, te in models:
        g = np.unique(d["group"][tr])
        keep = set(rng.permutation(g)[: int(round(share * len(g)))])
        out.append((tr[np.isin(d["group"][tr], list(keep))], va, te))
    return out


def cross(d, a_scene, reps):
    """Train on one source (its own 90/10 train / selection split by group), test on all of the other."""
    src = np.flatnonzero(d["scene"] == a_scene)
    other = np.flatnonzero(d["scene"] != a_scene)
    g = np.unique(d["group"][src])
    out = []
    for r in range(reps):
        val_g = set(np.random.default_rng(100 + r).permutation(g)[: len(g) // 10])
        is_val = np.isin(d["group"][src], list(val_g))
        out.append((src[~is_val], src[is_val], other))
    return out


def jobs(d):
    fixed = (np.flatnonzero(d["split"] == 0), np.flatnonzero(d["split"] == 1), np.flatnonzero(d["split"] == 2))
    cv = cv_folds(d)
    return {
        # name: (models as (train, val, test) index arrays, seeds, width, epochs)
        "seeds_w24": ([fixed] * 8, list(range(8)), 24, 30),
        "cv_w24": (cv, [0] * 10, 24, 30),
        "cv_w48": (cv, [0] * 10, 48, 30),
        "cv_w24_e60": (cv, [0] * 10, 24, 60),
        "cv_w24_half": (subsample(d, cv, 0.5, 7), [0] * 10, 24, 30),
        "cv_w24_quarter": (subsample(d, cv, 0.25, 7), [0] * 10, 24, 30),
        "cross_cls_to_scene": (cross(d, False, 4), [0, 1, 2, 3], 24, 30),
        "cross_scene_to_cls": (cross(d, True, 4), [0, 1, 2, 3], 24, 30),
        "cv_w32": (cv, [1] * 10, 32, 30),
        "cv_w24_s1": (cv, [1] * 10, 24, 30),
    }


# --- the recipe in JAX ---------------------------------------------------------------------------
def build(width, epochs, steps_per_epoch):
    import jax
    import jax.numpy as jnp
    from jax import lax

    widths = [width, 2 * width, 4 * width, 8 * width]
    total = epochs * steps_per_epoch

    def glorot(key, shape):
        fan_in = math.prod(shape[:-1])
        fan_out = math.prod(shape[:-2]) * shape[-1]
        lim = math.sqrt(6 / (fan_in + fan_out))
        return jax.random.uniform(key, shape, jnp.float32, -lim, lim)

    def bn(c):
        return {"g": jnp.ones(c), "b": jnp.zeros(c)}, {"m": jnp.zeros(c), "v": jnp.ones(c)}

    def init(key):
        ks = iter(jax.random.split(key, 16))
        p, s = {"stem": {"w": glorot(next(ks), (3, 3, 3, width))}}, {}
        p["stem"]["bn"], s["stem"] = bn(width)
        cin = width
        for i, c in enumerate(widths):
            b = {"w1": glorot(next(ks), (3, 3, cin, c)), "w2": glorot(next(ks), (3, 3, c, c))}
            sb = {}
            b["bn1"], sb["bn1"] = bn(c)
            b["bn2"], sb["bn2"] = bn(c)
            if i > 0:
                b["ws"] = glorot(next(ks), (1, 1, cin, c))
                b["bns"], sb["bns"] = bn(c)
            p[f"b{i}"], s[f"b{i}"] = b, sb
            cin = c
        p["dense"] = {"w": glorot(next(ks), (cin, 2)), "b": jnp.zeros(2)}
        return p, s

    def conv(x, w, stride):
        return lax.conv_general_dilated(x, w, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

    def norm(x, p, s, train):
        # Keras BatchNormalization: momentum 0.99, epsilon 1e-3, biased batch variance
        if train:
            m, v = x.mean((0, 1, 2)), x.var((0, 1, 2))
            s = {"m": 0.99 * s["m"] + 0.01 * m, "v": 0.99 * s["v"] + 0.01 * v}
        else:
            m, v = s["m"], s["v"]
        return (x - m) * lax.rsqrt(v + 1e-3) * p["g"] + p["b"], s

    def forward(p, s, x, train, key):
        ns = {}
        x = x / 127.5 - 1.0
        x = conv(x, p["stem"]["w"], 2)
        x, ns["stem"] = norm(x, p["stem"]["bn"], s["stem"], train)
        x = jax.nn.relu(x)
        for i in range(4):
            b, sb, nb = p[f"b{i}"], s[f"b{i}"], {}
            stride = 1 if i == 0 else 2
            y = conv(x, b["w1"], stride)
            y, nb["bn1"] = norm(y, b["bn1"], sb["bn1"], train)
            y = conv(jax.nn.relu(y), b["w2"], 1)
            y, nb["bn2"] = norm(y, b["bn2"], sb["bn2"], train)
            sc = x
            if i > 0:
                sc, nb["bns"] = norm(conv(x, b["ws"], stride), b["bns"], sb["bns"], train)
            x = jax.nn.relu(y + sc)
            ns[f"b{i}"] = nb
        x = x.mean((1, 2))
        if train:  # Dropout(0.2)
            x = x * jax.random.bernoulli(key, 0.8, x.shape) / 0.8
        return x @ p["dense"]["w"] + p["dense"]["b"], ns

    # augmentation of one face (classifier.augment without its JPEG step)
    skin = jnp.array([[224, 172, 140], [198, 134, 66], [141, 85, 36], [255, 219, 172], [90, 56, 37]], jnp.float32)
    blur_k = jnp.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
    blur_k = jnp.tile((blur_k[:, None] * blur_k[None, :])[:, :, None, None], (1, 1, 1, 3))
    grid = jnp.arange(SIZE, dtype=jnp.float32)

    def augment(key, img):
        k = jax.random.split(key, 16)
        x = img.astype(jnp.float32)
        u = lambda i, lo, hi, shape=(): jax.random.uniform(k[i], shape, jnp.float32, lo, hi)  # noqa: E731
        # scale / crop jitter: a random c x c crop, bilinear (half-pixel centres) back to 96
        c = jnp.round(u(0, 0.85, 1.0) * SIZE)
        oy = jnp.floor(u(1, 0, 1) * (SIZE - c + 1))
        ox = jnp.floor(u(2, 0, 1) * (SIZE - c + 1))

        def axis(o):
            src = jnp.clip((grid + 0.5) * c / SIZE - 0.5, 0, c - 1)
            lo = jnp.floor(src)
            return (o + lo).astype(jnp.int32), jnp.minimum(o + lo + 1, o + c - 1).astype(jnp.int32), src - lo

        y0, y1, fy = axis(oy)
        x0, x1, fx = axis(ox)
        rows = x[y0] * (1 - fy)[:, None, None] + x[y1] * fy[:, None, None]
        x = rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]
        x = jnp.where(u(3, 0, 1) < 0.5, x[:, ::-1], x)
        # lighting and white balance
        x = x * u(4, 0.6, 1.4) + u(5, -30, 30)
        x = x * u(6, 0.85, 1.15, (1, 1, 3))
        mean = x.mean((0, 1), keepdims=True)
        x = (x - mean) * u(7, 0.7, 1.3) + mean
        # blur
        blurred = lax.conv_general_dilated(x[None], blur_k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=3)[0]
        x = jnp.where(u(8, 0, 1) < 0.25, blurred, x)
        # a hand over the mouth
        cx, cy = u(9, 0.3, 0.7) * SIZE, u(10, 0.6, 0.85) * SIZE
        rx, ry = u(11, 0.15, 0.3) * SIZE, u(12, 0.08, 0.18) * SIZE
        m = ((((grid[None, :] - cx) / rx) ** 2 + ((grid[:, None] - cy) / ry) ** 2) <= 1.0).astype(jnp.float32)[..., None]
        tone = skin[jax.random.randint(k[13], (), 0, 5)] * u(14, 0.7, 1.1)
        x = jnp.where(u(15, 0, 1) < 0.2, x * (1 - m) + tone * m, x)
        return jnp.clip(x, 0, 255)

    def lr_at(step):
        # keras CosineDecay(2e-3, total, alpha=0.02)
        cos = 0.5 * (1 + jnp.cos(jnp.pi * jnp.minimum(step, total) / total))
        return 2e-3 * ((1 - 0.02) * cos + 0.02)

    def train_step(p, s, opt, step, X, Y, W, idx, key):
        ka, kd = jax.random.split(key)
        x = jax.vmap(augment)(jax.random.split(ka, BATCH), X[idx])

        def loss_fn(p):
            logits, ns = forward(p, s, x, True, kd)
            ce = -jax.nn.log_softmax(logits)[jnp.arange(BATCH), Y[idx]]
            return (ce * W[idx]).sum() / BATCH, ns

        (loss, ns), g = jax.value_and_grad(loss_fn, has_aux=True)(p)
        # keras AdamW: decoupled decay 1e-4, betas 0.9 / 0.999, epsilon 1e-7
        lr, t = lr_at(step), step + 1.0
        m = jax.tree.map(lambda a, b: 0.9 * a + 0.1 * b, opt["m"], g)
        v = jax.tree.map(lambda a, b: 0.999 * a + 0.001 * b * b, opt["v"], g)
        alpha = lr * jnp.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        p = jax.tree.map(lambda w, a, b: w - lr * 1e-4 * w - alpha * a / (jnp.sqrt(b) + 1e-7), p, m, v)
        return p, ns, {"m": m, "v": v}, loss

    @jax.jit
    def epoch(p, s, opt, step0, X, Y, W, idx, keys):
        """idx: [steps, models, BATCH]; keys: [steps, models, 2]."""

        def body(carry, inp):
            p, s, opt, step = carry
            i, k = inp
            p, s, opt, loss = jax.vmap(train_step, in_axes=(0, 0, 0, None, None, None, None, 0, 0))(p, s, opt, step, X, Y, W, i, k)
            return (p, s, opt, step + 1.0), loss

        (p, s, opt, step), losses = lax.scan(body, (p, s, opt, step0), (idx, keys))
        return p, s, opt, step, losses.mean(0)

    @jax.jit
    def probs(p, s, X, idx):
        """P(mask) of every model on its own faces; idx: [models, n] (padded)."""

        def one(p, s, i):
            logits, _ = forward(p, s, X[i].astype(jnp.float32), False, None)
            return jax.nn.softmax(logits)[:, 1]

        return jax.vmap(one)(p, s, idx)

    def init_all(seeds):
        p, s = jax.vmap(init)(jnp.stack([jax.random.PRNGKey(sd) for sd in seeds]))
        return p, s, {"m": jax.tree.map(jnp.zeros_like, p), "v": jax.tree.map(jnp.zeros_like, p)}

    return init_all, epoch, probs


def pad_idx(lists):
    """Index lists of unequal length as one [models, n] array, padded with each list's first face."""
    n = max(len(a) for a in lists)
    return np.stack([np.concatenate([a, np.full(n - len(a), a[0])]) for a in lists]).astype(np.int32)


def run_job(name, spec, d, dev):
    import jax
    import jax.numpy as jnp

    models, seeds, width, epochs = spec
    spe = int(np.ceil(max(len(tr) for tr, _, _ in models) / BATCH))
    if SMOKE:
        models, seeds, epochs, spe = models[:2], seeds[:2], 2, 3
    M = len(models)
    init_all, epoch, probs = build(width, epochs, spe)
    p, s, opt = init_all(seeds)
    X, Y, W = dev
    va_idx = pad_idx([va for _, va, _ in models])
    te_idx = pad_idx([te for _, _, te in models])
    va_n = np.array([len(va) for _, va, _ in models])
    rng = np.random.default_rng(1000 + seeds[0])
    best_loss = np.full(M, np.inf)
    best = (p, s)
    step = jnp.float32(0)
    yv = d["y"][va_idx]
    mask_v = np.arange(va_idx.shape[1])[None, :] < va_n[:, None]
    t0, log = time.time(), []
    for e in range(epochs):
        # each model's own shuffled training faces, wrapped to the common step count
        idx = np.stack([np.resize(rng.permutation(tr), spe * BATCH).reshape(spe, BATCH) for tr, _, _ in models], 1)
        keys = jax.random.split(jax.random.PRNGKey(10_000 * e + seeds[0]), spe * M).reshape(spe, M, -1)
        p, s, opt, step, tl = epoch(p, s, opt, step, X, Y, W, jnp.asarray(idx), keys)
        pv = np.clip(np.asarray(probs(p, s, X, jnp.asarray(va_idx))), 1e-7, 1 - 1e-7)
        vl = (-(yv * np.log(pv) + (1 - yv) * np.log(1 - pv)) * mask_v).sum(1) / va_n  # unweighted, as keras val_loss
        better = vl < best_loss
        best_loss = np.where(better, vl, best_loss)
        sel = jnp.asarray(better)
        pick = lambda new, old: jnp.where(sel.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)  # noqa: E731
        best = (jax.tree.map(pick, p, best[0]), jax.tree.map(pick, s, best[1]))
        log.append({"epoch": e + 1, "train_loss": np.round(np.asarray(tl), 4).tolist(), "val_loss": np.round(vl, 4).tolist(), "s": round(time.time() - t0, 1)})
        print(name, log[-1], flush=True)
    pt = np.asarray(probs(best[0], best[1], X, jnp.asarray(te_idx)))
    return {"probs": [pt[i, : len(te)] for i, (_, _, te) in enumerate(models)], "test": [te for _, _, te in models], "log": log, "seconds": time.time() - t0}


def ci(k, n):
    lo, hi = wilson(int(k), int(n))
    return round(100 * lo, 2), round(100 * hi, 2)


def scores(p, te, d):
    """Accuracy, faces >= 40 px and chin masks read as no mask of P(mask) p on faces te."""
    ok = (p >= 0.5) == (d["y"][te] == 1)
    j, ch = d["judged"][te], d["chin"][te]
    return ok, {"n": len(te), "right": int(ok.sum()), "acc": round(100 * ok.mean(), 2), "acc_ge40": round(100 * ok[j].mean(), 2), "chin_caught": f"{int((p[ch] < 0.5).sum())}/{int(ch.sum())}"}


def summary(name, r, d):
    """Per model and pooled: accuracy (95 % Wilson interval), faces >= 40 px, chin masks read as no mask."""
    rows = [scores(p, te, d)[1] for p, te in zip(r["probs"], r["test"])]
    out = {"job": name, "models": rows, "seconds": round(r["seconds"])}
    te = np.concatenate(r["test"])
    if len(np.unique(te)) == len(te):  # disjoint tests (cv folds): pool them
        ok, pooled = scores(np.concatenate(r["probs"]), te, d)
        j, sc = d["judged"][te], d["scene"][te]
        pooled.update(ci95=ci(ok.sum(), len(ok)), ci95_ge40=ci(ok[j].sum(), j.sum()), acc_scene=round(100 * ok[sc].mean(), 2), acc_cls=round(100 * ok[~sc].mean(), 2))
        out["pooled"] = pooled
    else:
        accs = [m["acc"] for m in rows]
        out["mean_acc"], out["min_acc"], out["max_acc"] = round(float(np.mean(accs)), 2), min(accs), max(accs)
    return out


def run(names):
    import jax
    import jax.numpy as jnp

    t0 = time.time()
    d = load()
    face_id = np.arange(len(d["y"]))  # index into crops96.npz, which report() reads
    if SMOKE:
        face_id = face_id[::20]
        d = {k: v[face_id] for k, v in d.items()}
    print("devices", jax.devices(), "faces", len(d["y"]), "load", round(time.time() - t0, 1), "s", flush=True)
    dev = (jnp.asarray(d["x"]), jnp.asarray(d["y"].astype(np.int32)), jnp.asarray(d["weight"]))
    all_jobs = jobs(d)
    results, summaries = {}, []
    for name in names or list(all_jobs):
        r = run_job(name, all_jobs[name], d, dev)
        summaries.append(summary(name, r, d))
        print(json.dumps(summaries[-1]), flush=True)
        for i, (p, te) in enumerate(zip(r["probs"], r["test"])):
            results[f"{name}/{i}/p"], results[f"{name}/{i}/test"] = p, face_id[te]
        # written after every job, so a run cut short keeps what it finished
        os.makedirs(OUTDIR, exist_ok=True)
        np.savez(os.path.join(OUTDIR, "sweep_probs.npz"), **results)
        json.dump({"summaries": summaries, "devices": str(jax.devices()), "smoke": SMOKE}, open(os.path.join(OUTDIR, "sweep_report.json"), "w"), indent=1)


def report(files):
    """Tables from saved runs (sweep_probs.npz files): pooled cross-validation jobs side by side,
    each paired with the base recipe on the same 6868 faces (exact McNemar), the mean of the base
    recipe's seeds, a power-law fit of the learning curve, and the per-model jobs' spread."""
    meta = np.load(CROPS)
    y, judged, chin, scene = meta["y"] == 1, meta["judged"], meta["chin"], meta["scene"]
    jobs_p = {}
    for f in files:
        z = np.load(f)
        for k in z.files:
            name, i, what = k.split("/")
            jobs_p.setdefault(name, {}).setdefault(int(i), {})[what] = z[k]
    pooled, spread = {}, {}
    for name, models in jobs_p.items():
        te = np.concatenate([models[i]["test"] for i in sorted(models)])
        p = np.concatenate([models[i]["p"] for i in sorted(models)])
        if len(np.unique(te)) == len(te) == len(y):
            full = np.empty(len(y))
            full[te] = p
            pooled[name] = full
        else:
            spread[name] = [100 * ((models[i]["p"] >= 0.5) == y[models[i]["test"]]).mean() for i in sorted(models)]
    if "cv_w24" in pooled and "cv_w24_s1" in pooled:
        pooled["cv_w24 + cv_w24_s1 (mean P)"] = (pooled["cv_w24"] + pooled["cv_w24_s1"]) / 2
    base_ok = (pooled["cv_w24"] >= 0.5) == y if "cv_w24" in pooled else None
    print(f"{'10-fold grouped CV, every face once':34s} {'accuracy [95 %]':>22s} {'faces >= 40 px [95 %]':>24s} {'scenes':>7s} {'crops':>7s} {'chin masks caught [95 %]':>26s} {'vs cv_w24: b / c, McNemar p':>28s}")
    for name, p in pooled.items():
        ok = (p >= 0.5) == y
        a, g = ci(ok.sum(), len(ok)), ci(ok[judged].sum(), judged.sum())
        caught = int((p[chin] < 0.5).sum())
        cc = ci(caught, chin.sum())
        pair = ""
        if base_ok is not None and name != "cv_w24":
            b, c = int((base_ok & ~ok).sum()), int((~base_ok & ok).sum())
            pair = f"{b} / {c}, p = {mcnemar(b, c):.3f}"
        print(
            f"{name:34s} {100 * ok.mean():6.2f} [{a[0]:5.2f}, {a[1]:5.2f}] {100 * ok[judged].mean():8.2f} [{g[0]:5.2f}, {g[1]:5.2f}]"
            f" {100 * ok[scene].mean():7.2f} {100 * ok[~scene].mean():7.2f} {caught:6d}/{int(chin.sum())} [{cc[0]:5.1f}, {cc[1]:5.1f}] {pair:>28s}"
        )
    # learning curve: error = a * n^-b through the shares of the training faces each fold kept
    curve = [(s, pooled[n]) for s, n in ((0.25, "cv_w24_quarter"), (0.5, "cv_w24_half"), (1.0, "cv_w24")) if n in pooled]
    if len(curve) >= 2:
        for label, sel in (("all faces", np.ones(len(y), bool)), ("faces >= 40 px", judged)):
            err = np.array([100 * ((p[sel] >= 0.5) != y[sel]).mean() for _, p in curve])
            b, _ = np.polyfit(-np.log([s for s, _ in curve]), np.log(err), 1)
            need = (err[-1] / 2.0) ** (1 / b) if b > 0 else float("inf")
            print(f"learning curve, {label}: error {' -> '.join(f'{e:.2f}' for e in err)} % at {', '.join(str(s) for s, _ in curve)} of the training faces;"
                  f" error ~ n^-{b:.2f}: 2 % error (98 % accuracy) at {need:.1f}x today's training faces")
    # where the errors are: which faces more labels should bring
    if "cv_w24" in pooled:
        err = (pooled["cv_w24"] >= 0.5) != y
        for size, sel in (("faces >= 40 px", judged), ("faces < 40 px", ~judged)):
            for src, ss in (("crops", ~scene), ("scenes", scene)):
                k = sel & ss
                print(f"cv_w24 errors, {src}, {size}: {int(err[k].sum())}/{int(k.sum())} ({100 * err[k].mean():.2f} %);"
                      f" unmasked read as mask {int((err & k & ~y).sum())} (chin masks {int((err & k & chin).sum())}), masked read as no mask {int((err & k & y).sum())}")
        # the door's trade: a higher P(mask) threshold stops more chin masks, and asks more masked people to adjust
        p = pooled["cv_w24"]
        for thr in (0.5, 0.6, 0.7, 0.8, 0.9):
            ok = (p >= thr) == y
            print(f"cv_w24, mask if P(mask) >= {thr}: accuracy {100 * ok.mean():.2f} %, faces >= 40 px {100 * ok[judged].mean():.2f} %,"
                  f" chin masks caught {int((p[chin] < thr).sum())}/{int(chin.sum())} ({int((p[chin & judged] < thr).sum())}/{int((chin & judged).sum())} of those >= 40 px),"
                  f" masked faces >= 40 px read as no mask {int((y & judged & (p < thr)).sum())}/{int((y & judged).sum())},"
                  f" unmasked faces >= 40 px read as mask {int((~y & judged & (p >= thr)).sum())}/{int((~y & judged).sum())}")
    for name, accs in spread.items():
        print(f"{name:34s} per model: {' '.join(f'{a:.2f}' for a in accs)}  mean {np.mean(accs):.2f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["prepare"]:
        prepare()
    elif sys.argv[1:2] == ["run"]:
        run(sys.argv[2:])
    elif sys.argv[1:2] == ["report"]:
        report(sys.argv[2:])
    else:
        sys.exit(__doc__)
