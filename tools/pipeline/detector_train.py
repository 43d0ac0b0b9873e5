"""Fine-tunes the official RetinaFace mobilenet0.25 on masked faces (the scene set's training split).

    python -m pipeline.detector_train      # (from tools/) the shipped recipe -> tools/work/retinaface_ft.weights.h5
    python -m pipeline.detector_train --epochs 1 --limit 32 --out work/smoke.weights.h5   # smoke run

The official weights were trained on WIDER FACE, which has few masked faces: on the scene set's
held-out photos they find masked faces less often than unmasked ones, and far less at 320x240.
This trains the FPN, the SSH context modules and the heads of the stride-8 and stride-16 levels on
the scene set's labelled boxes (with_mask, without_mask and mask_weared_incorrect are all faces).
Frozen, with the official weights: the MobileNet body (training the whole network forgot unmasked
faces in the first try, issue 25) and the stride-32 level (faces over ~180 px at 640x480: the
scene set has few, and training it made a cat, a motorcycle and the moon score 0.8-0.98).

Recipe (biubug6/Pytorch_Retinaface's multibox loss, adapted); measured choices in models/README.md:
  * priors matched to boxes at IoU >= 0.35 (and every box to its best prior at >= 0.2);
    background = the hardest negatives, --neg-pos per positive; boxes under MIN_TRAIN_FACE px
    are ignored (neither face nor background);
  * box loss: smooth L1 (variances 0.1 / 0.2), weight 2, to the original model's box where that
    overlaps the labelled box at IoU >= 0.5, else to the labelled box: the scene set boxes faces
    tighter than WIDER FACE, and the classifier, trained on the original detector's framing,
    reads 3 points worse on boxes regressed to the labels (--box-target label);
  * landmarks: the scene set has none, so the landmark head is taught by the original model
    (distillation on the positive priors): landmarks stay where the official weights put them;
  * background: distillation against the original model's face probability on every prior that
    is not a labelled face, so that what WIDER FACE taught about non-faces survives;
  * augmentation for a door and for web photos: random square crops (0.3-1 of the short side, so
    the set's small faces become door-distance faces) or, for --far of the samples, the whole
    photo shrunk into the canvas (far faces, the scale the 320x240 detector sees), flip,
    brightness / contrast / saturation, blur and JPEG re-encoding;
  * SGD with momentum and weight decay, linear warm-up then cosine decay, fixed seed; no model
    selection (the held-out split is for measuring only).
Time: about 5 minutes on the 2-core build machine (24 epochs of 569 photos at 384x384).
Split (grouped by photo, `detector.split`): scene images i % 3 != 2 train (and the i % 3 == 0 third
also calibrates int8, as before), i % 3 == 2 is held out: never trained or calibrated on.
"""
import argparse
import io
import os
import queue
import threading
import time

import numpy as np
import tensorflow as tf
from PIL import Image, ImageFilter

from pipeline import common, detector, retinaface_keras

WORK = common.WORK
DEFAULT_OUT = os.path.join(WORK, "retinaface_ft.weights.h5")
POS_IOU, FORCE_IOU = 0.35, 0.2
MIN_TRAIN_FACE = 6  # px at training scale: smaller boxes are neither faces nor background


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=24)
    p.add_argument("--size", type=int, default=384, help="square training canvas (px)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--far", type=float, default=0.6,
                   help="share of samples that are the whole photo shrunk into the canvas (far faces) instead of a crop")
    p.add_argument("--neg-pos", type=int, default=7, help="mined negatives per positive prior")
    p.add_argument("--background-kd", type=float, default=1.0,
                   help="weight of distillation against the original model's face probability on every prior that is"
                        " not a labelled face (the scene set's streets are all the background it shows): fewer weak"
                        " false faces for about a point of masked recall (models/README.md, runs c, f and g)")
    p.add_argument("--box-target", choices=("teacher", "label"), default="teacher",
                   help="teacher: where the original model's box for a face's prior overlaps the labelled box at IoU >= 0.5,"
                        " regress to the original box (the classifier's framing stays the one it was trained on), else to"
                        " the label; label: always the labelled box (tighter: the classifier then reads 3 points worse)")
    p.add_argument("--landmark-weight", type=float, default=1.0, help="distillation weight for landmarks")
    p.add_argument("--train", choices=("heads", "fpn", "stage3", "all"), default="fpn",
                   help="heads: the three heads; fpn: FPN + SSH + heads (default); stage3: also the body's last stage")
    p.add_argument("--train-level3", action="store_true",
                   help="also train the stride-32 level (largest faces); by default it keeps the official weights: the scene"
                        " set has few faces that large, and training it made cats, motorcycles and the moon score 0.8-0.98")
    p.add_argument("--limit", type=int, default=0, help="use only the first N training images (smoke runs)")
    p.add_argument("--threads", type=int, default=0, help="TensorFlow intra-op threads (0: all cores)")
    p.add_argument("--seed", type=int, default=common.SEED)
    p.add_argument("--out", default=DEFAULT_OUT)
    return p.parse_args(argv)


LEVEL3 = ("fpn_output3", "ssh3_", "ClassHead.2", "BboxHead.2", "LandmarkHead.2")


def trainable(layer_name, mode, keep_level3=True):
    """Whether training updates this layer. keep_level3: the stride-32 level (FPN output 3, SSH 3
    and the heads' third conv: faces over ~180 px at 640x480) keeps the official weights."""
    if keep_level3 and layer_name.startswith(LEVEL3):
        return False
    if mode == "all":
        return True
    if mode == "stage3" and layer_name.startswith("body_stage3"):
        return True
    if mode == "heads":
        return layer_name.startswith(("ClassHead", "BboxHead", "LandmarkHead"))
    return not layer_name.startswith("body_")


def point_form(pri, S):
    cx, cy, w, h = pri[:, 0] * S, pri[:, 1] * S, pri[:, 2] * S, pri[:, 3] * S
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)


def match(boxes, pri, pri_pts, S):
    """Per prior: label (1 face, 0 background, -1 ignored) and encoded box target (N, 4)."""
    n = len(pri)
    labels = np.zeros(n, np.int32)
    loc_t = np.zeros((n, 4), np.float32)
    if len(boxes) == 0:
        return labels, loc_t
    small = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) < MIN_TRAIN_FACE
    if small.any():
        # priors centred in a face too small to learn from are not background either
        cx, cy = pri[:, 0] * S, pri[:, 1] * S
        for b in boxes[small]:
            labels[(cx >= b[0]) & (cx <= b[2]) & (cy >= b[1]) & (cy <= b[3])] = -1
        boxes = boxes[~small]
        if len(boxes) == 0:
            return labels, loc_t
    iou = common.iou_matrix(boxes, pri_pts)  # (G, N)
    best_gt = iou.argmax(0)
    best_gt_iou = iou.max(0)
    best_prior = iou.argmax(1)
    for g, p in enumerate(best_prior):
        if iou[g, p] >= FORCE_IOU:
            best_gt[p], best_gt_iou[p] = g, 1.0
    pos = best_gt_iou >= POS_IOU
    labels[pos] = 1
    m = boxes[best_gt[pos]]
    p = pri[pos]
    v0, v1 = common.VARIANCES
    gcx, gcy = (m[:, 0] + m[:, 2]) / 2 / S, (m[:, 1] + m[:, 3]) / 2 / S
    gw, gh = (m[:, 2] - m[:, 0]) / S, (m[:, 3] - m[:, 1]) / S
    loc_t[pos] = np.stack([(gcx - p[:, 0]) / (v0 * p[:, 2]), (gcy - p[:, 1]) / (v0 * p[:, 3]),
                           np.log(gw / p[:, 2]) / v1, np.log(gh / p[:, 3]) / v1], 1)
    return labels, loc_t


def augment(img, boxes, S, rng, far):
    """One training sample: (S x S x 3 float32 RGB 0..255, boxes in canvas pixels)."""
    h, w = img.shape[:2]
    canvas = Image.new("RGB", (S, S), tuple(int(v) for v in common.DET_MEAN_RGB))
    pil = Image.fromarray(img)
    out = None
    if rng.random() >= far and len(boxes):
        for _ in range(50):  # random square crop holding at least one face centre
            side = max(8, int(rng.uniform(0.3, 1.0) * min(w, h)))
            x0, y0 = int(rng.uniform(0, w - side + 1)), int(rng.uniform(0, h - side + 1))
            c = (boxes[:, :2] + boxes[:, 2:]) / 2
            inside = (c[:, 0] > x0) & (c[:, 0] < x0 + side) & (c[:, 1] > y0) & (c[:, 1] < y0 + side)
            if not inside.any():
                continue
            canvas.paste(pil.crop((x0, y0, x0 + side, y0 + side)).resize((S, S), Image.BILINEAR), (0, 0))
            out = np.clip((boxes[inside] - [x0, y0, x0, y0]) * (S / side), 0, S)
            break
    if out is None:  # the whole photo, shrunk into the canvas at a random place: far faces
        s = S / max(w, h) * rng.uniform(0.5, 1.0)
        nw, nh = max(1, int(w * s)), max(1, int(h * s))
        ox, oy = int(rng.uniform(0, S - nw + 1)), int(rng.uniform(0, S - nh + 1))
        canvas.paste(pil.resize((nw, nh), Image.BILINEAR), (ox, oy))
        out = boxes * [nw / w, nh / h, nw / w, nh / h] + [ox, oy, ox, oy]
    if rng.random() < 0.1:
        canvas = canvas.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
    if rng.random() < 0.2:
        buf = io.BytesIO()
        canvas.save(buf, "JPEG", quality=int(rng.uniform(30, 90)))
        canvas = Image.open(buf).convert("RGB")
    x = np.asarray(canvas, np.float32)
    x = x + rng.uniform(-32, 32) if rng.random() < 0.5 else x
    if rng.random() < 0.5:
        x = (x - x.mean()) * rng.uniform(0.5, 1.5) + x.mean()
    if rng.random() < 0.5:
        g = x.mean(2, keepdims=True)
        x = g + (x - g) * rng.uniform(0.5, 1.5)
    if rng.random() < 0.5:
        x = x[:, ::-1]
        out = np.stack([S - out[:, 2], out[:, 1], S - out[:, 0], out[:, 3]], 1)
    keep = (out[:, 2] - out[:, 0] > 1) & (out[:, 3] - out[:, 1] > 1)
    return np.clip(x, 0, 255), out[keep].astype(np.float32)


def batches(items, args, pri, pri_pts, rng):
    """Yields (x, labels, loc targets) per batch, an epoch at a time, from a background thread."""
    q = queue.Queue(maxsize=4)
    n_batches = len(items) // args.batch

    def work():
        for _ in range(args.epochs):
            order = rng.permutation(len(items))
            for b in range(n_batches):
                xs, ls, ts = [], [], []
                for k in order[b * args.batch:(b + 1) * args.batch]:
                    img, boxes = items[k]
                    x, bx = augment(img, boxes, args.size, rng, args.far)
                    lab, loc_t = match(bx, pri, pri_pts, args.size)
                    xs.append(x)
                    ls.append(lab)
                    ts.append(loc_t)
                q.put((np.stack(xs), np.stack(ls), np.stack(ts)))
        q.put(None)

    threading.Thread(target=work, daemon=True).start()
    while (item := q.get()) is not None:
        yield item


def smooth_l1(d):
    a = tf.abs(d)
    return tf.where(a < 1.0, 0.5 * d * d, a - 0.5)


def box_iou(a, b, pri):
    """IoU of two box encodings relative to the same priors (normalized canvas coordinates)."""
    v0, v1 = common.VARIANCES

    def corners(l):
        cx = pri[:, 0] + l[..., 0] * v0 * pri[:, 2]
        cy = pri[:, 1] + l[..., 1] * v0 * pri[:, 3]
        w = pri[:, 2] * tf.exp(l[..., 2] * v1)
        h = pri[:, 3] * tf.exp(l[..., 3] * v1)
        return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2

    ax1, ay1, ax2, ay2 = corners(a)
    bx1, by1, bx2, by2 = corners(b)
    inter = tf.nn.relu(tf.minimum(ax2, bx2) - tf.maximum(ax1, bx1)) * tf.nn.relu(tf.minimum(ay2, by2) - tf.maximum(ay1, by1))
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter / tf.maximum(union, 1e-9)


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    S = args.size
    items = [(common.load_rgb(p), np.array([b for _, b in boxes], np.float32).reshape(-1, 4))
             for i, (p, boxes) in enumerate(common.scene_set()) if detector.split(i) == "train"]
    if args.limit:
        items = items[:args.limit]
    pri = common.priors(S, S)
    pri_pts = point_form(pri, S)
    pri_t = tf.constant(pri)
    student = retinaface_keras.build(S, S, batch=args.batch)
    teacher = retinaface_keras.build(S, S, batch=args.batch)
    teacher.trainable = False
    train_vars = [v for l in student.layers if l.weights and trainable(l.name, args.train, not args.train_level3) for v in l.trainable_weights]
    n_batches = len(items) // args.batch
    total = n_batches * args.epochs
    warm = min(n_batches, max(1, total // 4))
    sched = tf.keras.optimizers.schedules.CosineDecay(args.lr * 0.1, max(1, total - warm), alpha=0.01,
                                                       warmup_target=args.lr, warmup_steps=warm)
    opt = tf.keras.optimizers.SGD(sched, momentum=0.9, weight_decay=5e-4)
    print(f"train: {len(items)} photos, {n_batches} batches of {args.batch} at {S}x{S}, {args.epochs} epochs, "
          f"{sum(int(np.prod(v.shape)) for v in train_vars)} trained parameters ({args.train})", flush=True)

    @tf.function(reduce_retracing=True)
    def step(x, labels, loc_t):
        t_loc, t_conf, t_landm = teacher(x, training=False)
        if args.box_target == "teacher":
            keep = tf.cast(box_iou(t_loc, loc_t, pri_t) >= 0.5, tf.float32)[..., None]
            loc_t = keep * t_loc + (1 - keep) * loc_t
        with tf.GradientTape() as tape:
            loc, conf, landm = student(x, training=True)
            pos = tf.equal(labels, 1)
            posf = tf.cast(pos, tf.float32)
            n_pos = tf.maximum(tf.reduce_sum(posf), 1.0)
            loss_l = tf.reduce_sum(tf.reduce_sum(smooth_l1(loc - loc_t), -1) * posf) / n_pos
            loss_m = tf.reduce_sum(tf.reduce_sum(smooth_l1(landm - t_landm), -1) * posf) / n_pos
            p = tf.clip_by_value(conf, 1e-7, 1.0)
            ce_bg = -tf.math.log(p[..., 0])
            ce_face = -tf.math.log(p[..., 1])
            # hard negatives: per image the NEG_POS x positives background priors with the highest loss
            neg_cand = tf.where(tf.equal(labels, 0), ce_bg, tf.zeros_like(ce_bg))
            rank = tf.argsort(tf.argsort(neg_cand, axis=1, direction="DESCENDING"), axis=1)
            n_neg = tf.minimum(args.neg_pos * tf.reduce_sum(tf.cast(pos, tf.int32), 1, keepdims=True),
                               tf.reduce_sum(tf.cast(tf.equal(labels, 0), tf.int32), 1, keepdims=True))
            n_neg = tf.maximum(n_neg, 16)  # face-free crops still teach background
            neg = tf.logical_and(rank < n_neg, tf.equal(labels, 0))
            loss_c = (tf.reduce_sum(ce_face * posf) + tf.reduce_sum(ce_bg * tf.cast(neg, tf.float32))) / n_pos
            # background distillation: binary KL(teacher || student) of P(face), summed over the
            # priors that are not labelled faces (where the original model is right by construction)
            t = tf.clip_by_value(t_conf[..., 1], 1e-7, 1 - 1e-7)
            s = p[..., 1]
            kl = t * tf.math.log(t / s) + (1 - t) * tf.math.log((1 - t) / tf.clip_by_value(1 - s, 1e-7, 1.0))
            loss_kd = tf.reduce_sum(kl * tf.cast(tf.equal(labels, 0), tf.float32)) / n_pos
            loss = 2.0 * loss_l + loss_c + args.landmark_weight * loss_m + args.background_kd * loss_kd
        grads = tape.gradient(loss, train_vars)
        opt.apply_gradients(zip(grads, train_vars))
        return loss, loss_l, loss_c, loss_m, loss_kd

    t0 = time.time()
    done = 0
    acc = np.zeros(5)
    for x, labels, loc_t in batches(items, args, pri, pri_pts, rng):
        acc += [float(v) for v in step(tf.constant(x), tf.constant(labels), tf.constant(loc_t))]
        done += 1
        if done % n_batches == 0:
            ep = done // n_batches
            l = acc / n_batches
            print(f"epoch {ep}/{args.epochs}: loss {l[0]:.3f} (box {l[1]:.3f}, class {l[2]:.3f}, landmarks {l[3]:.3f}, "
                  f"background kd {l[4]:.3f}) "
                  f"{time.time() - t0:.0f} s", flush=True)
            acc[:] = 0
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    student.save_weights(args.out)
    print(f"train: wrote {args.out} after {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
