"""Trains the mask / no-mask ResNet from scratch on detector crops, quantizes it to int8 and
measures float vs int8 on a held-out split and across sources.

    python tools/classifier.py              # ships models/quantized/mask_resnet_int8.tflite
    SIZE=64 WIDTH=16 SHIP=0 python tools/classifier.py   # another size / width (report only)
    ARCH=ensemble COMBINE=min SHIP=0 python tools/classifier.py   # experiments: see ARCH below
    ARCH=ensemble COMBINE=stack SHIP=0 python tools/classifier.py # combiner fitted on validation
    ARCH=imagenet SHIP=0 python tools/classifier.py      # body initialised from ImageNet
    ARCH=ensemble COMBINE=min MEMBERS=resnet,imagenet SHIP=0 python tools/classifier.py
    ARCH=ensemble MEMBERS=resnet,dlib_frozen SHIP=0 python tools/classifier.py  # + dlib face body
    ARCH=dlib_frozen LOWRES=0.3 SHIP=0 TAG=_lr30 python tools/classifier.py     # that member alone, far faces
    SEED=1 CROSS=0 SHIP=0 python tools/classifier.py     # the same recipe under another seed
    LOWRES=0.3 SHIP=0 python tools/classifier.py         # far faces: training faces resampled small
    POOL=2 SHIP=0 python tools/classifier.py             # the ResNet sees every face at 48 px
    EMA=0.995 CROSS=0 SHIP=0 python tools/classifier.py  # keep the best moving average of the weights
    DISTILL=0.5 MEMBERS=resnet,imagenet COMBINE=min CROSS=0 SHIP=0 python tools/classifier.py
                                                         # the ResNet learns from an ensemble's P(mask)
    MIXUP=0.2 SHIP=0 python tools/classifier.py          # training faces blended in pairs (mixup)
    LOWRES=0.3 SYN_CHIN=0.5 CROSS=cls SHIP=0 python tools/classifier.py
                                                         # held-out, then only crops -> scenes
    SYN_CHIN=0.5 HELDOUT=0 CROSS=cls SHIP=0 python tools/classifier.py  # only crops -> scenes

Splits (after de-duplication in faces.py), grouped by source image so faces of one photo never
straddle splits: held-out = 80 / 10 / 10 train / val / test over both sources; cross-source =
train on one source, test on the other.
"""
import json
import os
import random
import sys
import time

import numpy as np
import tensorflow as tf

import common
import stats

keras = tf.keras
WORK = os.path.join(os.path.dirname(__file__), "work")
OUT = os.path.join(os.path.dirname(__file__), "..", "models", "quantized")
SIZE = int(os.environ.get("SIZE", "96"))
WIDTH = int(os.environ.get("WIDTH", "24"))
EPOCHS = int(os.environ.get("EPOCHS", "30"))
# the dlib_frozen member trains only its head on a fixed body: 15 epochs, as dlib_resnet.py head
# measured it (each epoch runs the 150 px body on every training face, about 4x the ResNet's epoch)
DLIB_EPOCHS = int(os.environ.get("DLIB_EPOCHS", "15"))
# training weight of mask_weared_incorrect faces: only ~80 of them teach "a mask below the nose
# is no mask" (held-out, int8: 18 epochs at weight 1 read 1 of 9 as no mask; 30 at 4 read 8)
INCORRECT_WEIGHT = float(os.environ.get("INCORRECT_WEIGHT", "4"))
MIN_FACE_PX = 40  # the kiosk's default decide.min_face_px: smaller faces are not judged
SHIP = os.environ.get("SHIP", "1") == "1"
# ARCH=resnet: ResNet-10 from scratch (shipped). ARCH=retina: RetinaFace's MobileNet-0.25 body up
# to STAGE, initialised from the official detector weights (FREEZE=1 keeps them fixed), then one
# residual block of 8*WIDTH channels and global average pooling (experiment, see models/README.md).
# ARCH=imagenet: the same, but the body starts from the ImageNet MobileNet-0.25 that RetinaFace
# itself was trained from (general features, no face data; experiment).
# ARCH=dlib_frozen: dlib's face-recognition ResNet, frozen, and one trained block alone (the
# ensemble member below; experiment), DLIB_EPOCHS epochs.
# ARCH=ensemble: the models named in MEMBERS (default the ResNet and the frozen RetinaFace-body
# model; also retina, imagenet, imagenet_frozen, and dlib_frozen: dlib's face-recognition ResNet up
# to its 8 x 8 x 128 level, frozen, then one residual block; tools/dlib_resnet.py), trained apart, their
# probabilities combined inside one graph (same input and output tensors as either alone):
# COMBINE=mean averages them, COMBINE=min takes the lower P(mask), so either member can say no mask,
# COMBINE=stack weighs the members' logits by a logistic regression fitted on the validation split
# (chin masks weighted by INCORRECT_WEIGHT as in training), folded into one softmax head
ARCH = os.environ.get("ARCH", "resnet")
COMBINE = os.environ.get("COMBINE", "mean")
# a typo must not silently train the default model under a misleading report name
MEMBERS = os.environ.get("MEMBERS", "resnet,retina_frozen").split(",")
MEMBER_ARCHS = ("resnet", "retina", "retina_frozen", "imagenet", "imagenet_frozen", "dlib_frozen")
if ARCH not in ("resnet", "retina", "imagenet", "dlib_frozen", "ensemble") or COMBINE not in ("mean", "min", "stack"):
    sys.exit(f"ARCH={ARCH} COMBINE={COMBINE}: ARCH is resnet, retina, imagenet, dlib_frozen or ensemble; COMBINE is mean, min or stack")
if not set(MEMBERS) <= set(MEMBER_ARCHS) or len(MEMBERS) < 2:
    sys.exit(f"MEMBERS={','.join(MEMBERS)}: two or more of {', '.join(MEMBER_ARCHS)}")
TAG = os.environ.get("TAG", "")  # suffix of this run's file names in tools/work
TAG_TEACHER = os.environ.get("TAG_TEACHER", "")  # suffix of the DISTILL teacher's weight files
SYN_CHIN = float(os.environ.get("SYN_CHIN", "0"))  # synthetic chin masks (experiment, off when shipped)
HEAD_OCCLUDE = float(os.environ.get("HEAD_OCCLUDE", "0"))  # crowd occlusion (experiment, off when shipped)
# far faces: probability that a training face is resampled as if seen at 12-64 px (experiment, off when shipped)
LOWRES = float(os.environ.get("LOWRES", "0"))
# POOL=k (experiment, 1 when shipped): the ResNet averages k x k pixels first, so it sees every face
# at SIZE/k px whatever its size in the camera (same SIZE input tensor, so the Rust crop is unchanged)
POOL = int(os.environ.get("POOL", "1"))
# EMA=m (experiment, off when shipped): the epoch kept is picked among exponential moving averages
# of the weights (momentum m per step) instead of the raw weights
EMA = float(os.environ.get("EMA", "0"))
# DISTILL=a (experiment, off when shipped): the ResNet trains on soft targets, a share a of each
# taken from a teacher that reads the same augmented face: the MEMBERS combined by COMBINE (mean
# or min), rebuilt from the float weights an earlier ARCH=ensemble run left in tools/work. The
# teacher was trained on the held-out training split, so this needs CROSS=0.
# CROSS=1 (default): also train on one source and test on the other, both ways; CROSS=cls or
# CROSS=scene: only the direction trained on that source (an experiment aimed at one direction)
CROSS_DIRS = {"1": (("cls", "scene"), ("scene", "cls")), "0": (), "cls": (("cls", "scene"),), "scene": (("scene", "cls"),)}
CROSS = CROSS_DIRS.get(os.environ.get("CROSS", "1"))
if CROSS is None:
    sys.exit(f"CROSS must be one of {', '.join(CROSS_DIRS)}")
# HELDOUT=0 (experiment): skip the held-out model and measure only the CROSS direction(s)
HELDOUT = os.environ.get("HELDOUT", "1") == "1"
if not HELDOUT and (SHIP or not CROSS):
    sys.exit("HELDOUT=0 needs SHIP=0 and CROSS=1, cls or scene: the shipped model is the held-out one")
DISTILL = float(os.environ.get("DISTILL", "0"))
DISTILL_T = float(os.environ.get("DISTILL_T", "2"))  # temperature: the teacher's log-odds divided by T
# MIXUP=alpha (experiment, off when shipped): each training face is blended with another face of
# its batch, pixels, targets and weights alike, in the share lam ~ Beta(alpha, alpha) (the larger
# share kept by the face itself), a regulariser for small from-scratch training sets
MIXUP = float(os.environ.get("MIXUP", "0"))
# both train on soft 2-vector targets (categorical loss) instead of class indices
SOFT_TARGETS = DISTILL > 0 or MIXUP > 0
if DISTILL > 0 and (ARCH != "resnet" or COMBINE == "stack" or CROSS):
    sys.exit("DISTILL needs ARCH=resnet, COMBINE=mean or min and CROSS=0 (the teacher knows only the held-out split)")
# SEED: initialisation, augmentation and shuffling of training (never the splits or calibration)
SEED = int(os.environ.get("SEED", str(common.SEED)))
STAGE = int(os.environ.get("STAGE", "2"))
FREEZE = os.environ.get("FREEZE", "0") == "1"
CLASSES = ["no_mask", "mask"]  # output index 1 = mask


def seed_all():
    # bit-reproducible training on CPU (oneDNN and tf.data otherwise vary from run to run)
    tf.config.experimental.enable_op_determinism()
    random.seed(SEED)
    np.random.seed(SEED)
    tf.random.set_seed(SEED)
    keras.utils.set_random_seed(SEED)


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


def hand_occlusion(x):
    """A skin-toned blob over the lower face: a hand over the mouth must not read as a mask."""
    s = SIZE
    yy, xx = tf.meshgrid(tf.range(s, dtype=tf.float32), tf.range(s, dtype=tf.float32), indexing="ij")
    cx = tf.random.uniform([], 0.3, 0.7) * s
    cy = tf.random.uniform([], 0.6, 0.85) * s
    rx = tf.random.uniform([], 0.15, 0.3) * s
    ry = tf.random.uniform([], 0.08, 0.18) * s
    m = tf.cast(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0, tf.float32)[..., None]
    tone = tf.gather(SKIN, tf.random.uniform([], 0, 5, tf.int32)) * tf.random.uniform([], 0.7, 1.1)
    return x * (1 - m) + tone * m


def low_resolution(x):
    """The face as a distant camera sees it: area-sampled down to a crop side of 12-64 px
    (log-uniform), then bilinear up again, as crop_square upsamples a small detection. Scene faces
    are small (median 25 px wide) and mostly masked, crop-source faces large (median 123 px) and
    half unmasked, so a crop-trained model may read low resolution itself as "mask"."""
    side = tf.cast(tf.round(tf.exp(tf.random.uniform([], np.log(12.0), np.log(64.0)))), tf.int32)
    small = tf.image.resize(x, [side, side], method="area")
    return tf.image.resize(small, [SIZE, SIZE], method="bilinear")


def augment(x, y):
    x = tf.cast(x, tf.float32)
    s = SIZE
    # scale / crop jitter
    scale = tf.random.uniform([], 0.85, 1.0)
    c = tf.cast(tf.round(scale * s), tf.int32)
    x = tf.image.random_crop(x, [c, c, 3])
    x = tf.image.resize(x, [s, s])
    x = tf.image.random_flip_left_right(x)
    if LOWRES > 0:
        x = tf.cond(tf.random.uniform([]) < LOWRES, lambda: low_resolution(x), lambda: x)
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
    x = tf.cond(tf.random.uniform([]) < 0.2, lambda: hand_occlusion(x), lambda: x)
    x = tf.clip_by_value(x, 0, 255)
    # JPEG artefacts
    x = tf.cond(
        tf.random.uniform([]) < 0.3,
        lambda: tf.cast(tf.image.adjust_jpeg_quality(tf.cast(x, tf.uint8), tf.random.uniform([], 20, 70, tf.int32)), tf.float32),
        lambda: x,
    )
    x.set_shape([s, s, 3])
    return x, y


def synthetic_chin_masks(x, y, *w):
    """SYN_CHIN=p (experiment): with probability p, a masked face in the batch becomes a chin mask
    labelled no mask: the upper part (eyes, nose, down to 0.55-0.7 of the crop) of an unmasked
    face of the same batch over the masked face's mask, taken from 0.45 of the crop downwards.
    The crops source has masks only over the nose; its ~80 real chin masks are all scene faces."""
    s, n = SIZE, tf.shape(x)[0]
    partner = tf.random.shuffle(tf.range(n))
    apply = (y == 1) & (tf.gather(y, partner) == 0) & (tf.random.uniform([n]) < SYN_CHIN)
    top = tf.cast(tf.random.uniform([n, 1], 0.55, 0.7) * s, tf.int32)
    rows = tf.range(s)[None, :]
    lower = tf.gather(x, tf.clip_by_value(rows - top + int(0.45 * s), 0, s - 1), axis=1, batch_dims=1)
    comp = tf.where((rows < top)[:, :, None, None], tf.gather(x, partner), lower)
    x = tf.where(apply[:, None, None, None], comp, x)
    return (x, tf.where(apply, tf.zeros_like(y), y), *w)


def head_occlusion(x, y, *w):
    """HEAD_OCCLUDE=p (experiment): with probability p, an unmasked face's mouth and chin (from
    0.5-0.62 of the crop down) are hidden behind the top of another face's head from the same
    batch, shifted sideways; the label stays no mask. In crowd photos the head in front hides
    the mouth, and a mouth that cannot be seen must not read as a mask."""
    s, n = SIZE, tf.shape(x)[0]
    partner = tf.random.shuffle(tf.range(n))
    apply = (y == 0) & (tf.random.uniform([n]) < HEAD_OCCLUDE)
    top = tf.cast(tf.random.uniform([n, 1], 0.5, 0.62) * s, tf.int32)
    rows = tf.range(s)[None, :]
    head = tf.gather(tf.gather(x, partner), tf.clip_by_value(rows - top, 0, s - 1), axis=1, batch_dims=1)
    head = tf.roll(head, tf.random.uniform([], -s // 3, s // 3 + 1, tf.int32), axis=2)
    occluded = tf.where((rows >= top)[:, :, None, None], head, x)
    return (tf.where(apply[:, None, None, None], occluded, x), y, *w)


def mixup(x, y, *w):
    """MIXUP=alpha (experiment): pixels, 2-vector targets and weights become lam * own + (1 - lam)
    * a partner's from the same batch, lam = max(b, 1 - b) with b ~ Beta(alpha, alpha)."""
    n = tf.shape(x)[0]
    partner = tf.random.shuffle(tf.range(n))
    g1 = tf.random.gamma([n], MIXUP)
    g2 = tf.random.gamma([n], MIXUP)
    lam = g1 / (g1 + g2 + 1e-12)
    lam = tf.maximum(lam, 1 - lam)
    x = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * tf.gather(x, partner)
    y = lam[:, None] * y + (1 - lam[:, None]) * tf.gather(y, partner)
    return (x, y, *(lam * v + (1 - lam) * tf.gather(v, partner) for v in w))


def dataset(x, y, train, batch=64, w=None, teacher=None):
    """Batches of (pixels, label[, per-face training weight]). With SOFT_TARGETS the label is a
    2-vector: one-hot, then in training (1 - DISTILL) one-hot + DISTILL * the teacher's
    (P(no mask), P(mask)) of the same augmented pixels at temperature DISTILL_T, then blended in
    pairs by MIXUP. Validation labels stay one-hot, so val_loss still scores the true labels."""
    ds = tf.data.Dataset.from_tensor_slices((x, y) if w is None else (x, y, w))
    if train:
        ds = ds.shuffle(len(x), seed=SEED).map(lambda a, b, *c: (*augment(a, b), *c), num_parallel_calls=2)
    else:
        ds = ds.map(lambda a, b: (tf.cast(a, tf.float32), b))
    ds = ds.batch(batch)
    if train and SYN_CHIN > 0:
        ds = ds.map(synthetic_chin_masks)
    if train and HEAD_OCCLUDE > 0:
        ds = ds.map(head_occlusion)
    if SOFT_TARGETS:
        ds = ds.map(lambda a, b, *c: (a, tf.one_hot(b, 2), *c))
    if train and teacher is not None:
        def distilled(a, hard, *c):
            p = tf.clip_by_value(teacher(a, training=False)[:, 1:2], 1e-6, 1 - 1e-6)
            p = tf.sigmoid(tf.math.log(p / (1 - p)) / DISTILL_T)  # softened: how sure, not only which
            return (a, (1 - DISTILL) * hard + DISTILL * tf.concat([1 - p, p], 1), *c)

        ds = ds.map(distilled)
    if train and MIXUP > 0:
        ds = ds.map(mixup)
    return ds.prefetch(2)


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
    """Global average pooling, dropout, 2-way softmax (index 1 = mask): shared by both bodies."""
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    out = keras.layers.Dense(2, activation="softmax")(x)
    return keras.Model(inp, out, name=name)


def resnet(size, width):
    """ResNet-10-style: stem, four stages of one basic block (widths w, 2w, 4w, 8w), global
    average pooling, 2-way softmax. Input: RGB pixels 0..255; normalisation is inside."""
    inp = keras.Input((size, size, 3), name="face_rgb")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inp)
    if POOL > 1:
        x = keras.layers.AveragePooling2D(POOL)(x)
    x = keras.layers.Conv2D(width, 3, 2, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    for i, m in enumerate((1, 2, 4, 8)):
        x = basic_block(x, width * m, 1 if i == 0 else 2)
    pool = f"p{POOL}" if POOL > 1 else ""
    return classifier_head(inp, x, f"mask_resnet10_{size}{pool}_w{width}")


def pretrained_hybrid(size, width, freeze, source="retina"):
    """A pretrained MobileNet-0.25 body up to STAGE, one residual block of 8*width channels,
    global average pooling. source "retina": the detector's body (WIDER FACE weights);
    "imagenet": the ImageNet backbone RetinaFace was trained from (no face data)."""
    if source == "imagenet":
        import mobilenet_imagenet

        body = mobilenet_imagenet.build(size, STAGE)
    else:
        import retinaface_keras

        body = retinaface_keras.build(size, size, batch=None, outputs=(retinaface_keras.STAGE_OUTPUTS[STAGE],))
    body.trainable = not freeze
    inp = keras.Input((size, size, 3), name="face_rgb")
    x = body(inp)  # each body normalises its own input: the model takes RGB pixels 0..255
    x = basic_block(x, width * 8, 2)
    prefix = "retina" if source == "retina" else "imnet"
    return classifier_head(inp, x, f"mask_{prefix}{STAGE}{'f' if freeze else ''}_res_{size}_w{width}")


def dlib_hybrid(size):
    """dlib's face-recognition ResNet (face-pretrained, public domain; tools/dlib_resnet.py) up to
    its 8 x 8 x 128 level, frozen, then one residual block of 256 channels and global average
    pooling: dlib_resnet.py head's block, here trained end to end with classifier.py's augmentation
    (its dropout 0.2 instead of 0.3, AdamW from 2e-3). The body reads 150 px; another SIZE is
    resized to it inside the graph, so the ensemble keeps one input tensor."""
    import dlib_resnet

    body = dlib_resnet.build(upto=2)
    body.trainable = False
    inp = keras.Input((size, size, 3), name="face_rgb")
    x = inp if size == dlib_resnet.SIZE else keras.layers.Resizing(dlib_resnet.SIZE, dlib_resnet.SIZE, "bilinear")(inp)
    return classifier_head(inp, basic_block(body(x), 256, 2), f"mask_dlib2f_res_{size}")


def build_model(arch):
    if arch == "dlib_frozen":
        return dlib_hybrid(SIZE)
    if arch in ("retina", "imagenet"):
        return pretrained_hybrid(SIZE, WIDTH, FREEZE, arch)
    if arch in ("retina_frozen", "imagenet_frozen"):
        return pretrained_hybrid(SIZE, WIDTH, True, arch.removesuffix("_frozen"))
    return resnet(SIZE, WIDTH)


def logit(p):
    """log-odds of P(mask): a 2-way softmax's logit difference, recovered from its output."""
    p = np.clip(p.astype(np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def fit_stack(members, x, y, w):
    """Member weights a and bias c of P(mask) = sigmoid(sum a_i * logit_i + c): weighted logistic
    regression by Newton's method on held-back faces (a small L2 keeps it defined when separable)."""
    feats = np.stack([logit(float_probs(m, x)) for m in members] + [np.ones(len(x))], 1)
    w = np.ones(len(x)) if w is None else w.astype(np.float64)
    # L2 1e-2 on the mean weighted loss, i.e. 1e-2 * sum(w) on the summed loss stats.logistic minimises
    theta = stats.logistic(feats, y, w, np.r_[np.full(len(members), 1e-2), 0.0] * w.sum())
    return [float(t) for t in theta[:-1]], float(theta[-1])


def ensemble(members, stack=None):
    """One graph: the members' probabilities combined by COMBINE (dropout is off at inference).
    min of the two softmaxes no longer sums to 1; the product reads only index 1 (mask).
    stack = (a, c): each member's last Dense is scaled by a_i and their logits are added with the
    bias c on the mask logit, so the one softmax computes sigmoid(sum a_i * logit_i + c)."""
    inp = keras.Input((SIZE, SIZE, 3), name="face_rgb")
    if COMBINE == "stack":
        (a, c), logits = stack, []
        for i, m in enumerate(members):
            kernel, bias = m.layers[-1].get_weights()  # classifier_head's Dense
            head = keras.layers.Dense(2)
            logits.append(head(keras.Model(m.inputs, m.layers[-2].output)(inp)))
            head.set_weights([a[i] * kernel, a[i] * bias + (np.array([0, c], np.float32) if i == 0 else 0)])
        out = keras.layers.Softmax()(keras.layers.Add()(logits))
    else:
        outs = [m(inp) for m in members]
        out = keras.layers.Minimum()(outs) if COMBINE == "min" else keras.layers.Average()(outs)
    tag = "" if COMBINE == "mean" else f"_{COMBINE}"
    return keras.Model(inp, out, name="mask_ens_" + "_".join(m.name.removeprefix("mask_") for m in members) + tag)


def chin_masks(faces):
    """Chin / under-the-nose masks (VOC mask_weared_incorrect): labelled no mask, the faces a
    door must not let through and the scarcest in training."""
    return np.array([f.get("voc") == "mask_weared_incorrect" for f in faces])


def judged(faces):
    """Faces at least MIN_FACE_PX wide in their source image: the ones the kiosk judges."""
    return np.array([f["box"][2] - f["box"][0] >= MIN_FACE_PX for f in faces])


def weights(faces):
    """Per-face training weights (None when all are 1, which keeps the unweighted input pipeline)."""
    if INCORRECT_WEIGHT == 1:
        return None
    return np.where(chin_masks(faces), INCORRECT_WEIGHT, 1.0).astype(np.float32)


class WeightAverage(keras.callbacks.Callback):
    """Keeps an exponential moving average of every weight (BatchNorm statistics included) and,
    at each epoch's end, the average with the lowest validation loss. Aimed at the step-to-step
    noise behind the one-point spread across seeds; measured, it gained nothing (models/README.md)."""

    def __init__(self, momentum, x, y):
        super().__init__()
        self.m, self.x, self.y = momentum, x, y

    def on_train_begin(self, logs=None):
        self.avg = [w.astype(np.float64) for w in self.model.get_weights()]
        self.best, self.best_w = np.inf, None

    def on_train_batch_end(self, batch, logs=None):
        for a, w in zip(self.avg, self.model.get_weights()):
            a *= self.m
            a += (1 - self.m) * w

    def on_epoch_end(self, epoch, logs=None):
        raw = self.model.get_weights()
        avg = [a.astype(w.dtype) for a, w in zip(self.avg, raw)]
        self.model.set_weights(avg)
        p_mask = float_probs(self.model, self.x)
        p_true = np.where(self.y == 1, p_mask, 1 - p_mask)
        loss = float(-np.mean(np.log(np.clip(p_true, 1e-7, 1))))
        acc = float(np.mean((p_mask >= 0.5) == self.y))
        print(f"epoch {epoch + 1}: averaged weights val_loss {loss:.4f} val_accuracy {acc:.4f}", flush=True)
        if loss < self.best:
            self.best, self.best_w = loss, avg
        self.model.set_weights(raw)

    def on_train_end(self, logs=None):
        self.model.set_weights(self.best_w)


def load_teacher():
    """The MEMBERS' float weights from an earlier ARCH=ensemble run, combined by COMBINE."""
    members = []
    for arch in MEMBERS:
        m = build_model(arch)
        path = os.path.join(WORK, f"{m.name}{TAG_TEACHER}.weights.h5")
        if not os.path.exists(path):
            sys.exit(f"DISTILL: no {path}; run ARCH=ensemble MEMBERS={','.join(MEMBERS)} CROSS=0 SHIP=0 TAG={TAG_TEACHER} first")
        m.load_weights(path)
        m.trainable = False
        members.append(m)
    return ensemble(members)


def train(xtr, ytr, xva, yva, epochs, wtr=None, arch=ARCH):
    teacher = load_teacher() if DISTILL > 0 else None
    seed_all()
    model = build_model(arch)
    if teacher is not None:
        model.name = f"{model.name}_kd{round(100 * DISTILL)}t{DISTILL_T:g}"
    if MIXUP > 0:
        model.name = f"{model.name}_mix{round(100 * MIXUP)}"
    if SEED != common.SEED:  # its files in tools/work must not overwrite the default seed's
        model.name = f"{model.name}_s{SEED}"
    steps = epochs * int(np.ceil(len(xtr) / 64))
    lr = keras.optimizers.schedules.CosineDecay(2e-3, steps, alpha=0.02)
    loss, acc = "sparse_categorical_crossentropy", "accuracy"
    if SOFT_TARGETS:
        loss, acc = "categorical_crossentropy", "categorical_accuracy"
    model.compile(keras.optimizers.AdamW(lr, weight_decay=1e-4), loss, metrics=[acc])
    # keep the epoch with the lowest validation loss (the validation split only selects)
    if EMA > 0:
        best = WeightAverage(EMA, xva, yva)
    else:
        best = keras.callbacks.EarlyStopping("val_loss", patience=epochs, restore_best_weights=True)
    # BALANCE=1: weight classes inversely to their frequency (experiment; off for the shipped model)
    cw = None
    if os.environ.get("BALANCE") == "1":
        counts = np.bincount(ytr, minlength=2)
        cw = {c: float(len(ytr) / (2 * counts[c])) for c in (0, 1)}
    model.fit(dataset(xtr, ytr, True, w=wtr, teacher=teacher), validation_data=dataset(xva, yva, False), epochs=epochs, verbose=2, callbacks=[best], class_weight=cw)
    return model


def epochs_of(arch):
    """dlib_frozen trains only a head on a fixed body (DLIB_EPOCHS); the rest EPOCHS (an
    ensemble's report shows EPOCHS, its ResNet member's)."""
    return DLIB_EPOCHS if arch == "dlib_frozen" else EPOCHS


def fit(xtr, ytr, xva, yva, wtr, wva, report, prefix):
    """The model to quantize, and its members when it is an ensemble (else []). A stack's
    coefficients go into report under prefix."""
    if ARCH != "ensemble":
        return train(xtr, ytr, xva, yva, epochs_of(ARCH), wtr), []
    members = [train(xtr, ytr, xva, yva, epochs_of(arch), wtr, arch) for arch in MEMBERS]
    stack = None
    if COMBINE == "stack":
        stack = fit_stack(members, xva, yva, wva)
        report[f"{prefix}_stack"] = {"member_weights": dict(zip((m.name for m in members), stack[0])), "mask_bias": stack[1]}
    return ensemble(members, stack), members


def member_metrics(prefix, members, x, y, probs):
    """Each ensemble member alone (float), so the report shows what combining adds."""
    out = {}
    for m in members:
        p = float_probs(m, x)
        probs[f"{prefix}_{m.name}"] = p
        out[f"{prefix}_member_{m.name}_float"] = metrics(p, y)
    return out


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


def held_out(faces, report, probs):
    """Trains on the held-out split's training faces and measures float and int8 on its test
    faces; returns the model's name and its int8 flatbuffer."""
    sp = splits(faces)
    data = {k: load_crops(v, SIZE) for k, v in sp.items()}
    print({k: len(v[0]) for k, v in data.items()}, flush=True)
    model, members = fit(*data["train"], *data["val"], weights(sp["train"]), weights(sp["val"]), report, "heldout")
    report["model"] = model.name
    report["params"] = int(model.count_params())
    # members' float weights, so another combination can be quantized and measured without retraining
    for m in members:
        m.save_weights(os.path.join(WORK, f"{m.name}{TAG}.weights.h5"))
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


def main():
    t0 = time.time()
    seed_all()
    faces = json.load(open(os.path.join(WORK, "faces.json")))["faces"]
    report = {"size": SIZE, "width": WIDTH, "epochs": epochs_of(ARCH), "incorrect_weight": INCORRECT_WEIGHT}
    probs = {}  # per-face probabilities, for analysis without retraining
    name, q = held_out(faces, report, probs) if HELDOUT else (None, None)
    # cross-source generalisation: train on one source, test on all of the other
    for a, b in CROSS:
        key = f"cross_train_{a}_test_{b}"
        tr = [f for f in faces if f["src"] == a]
        te = [f for f in faces if f["src"] == b]
        trs = splits(tr)
        xa, ya = load_crops(trs["train"] + trs["test"], SIZE)
        xv, yv = load_crops(trs["val"], SIZE)
        xb, yb = load_crops(te, SIZE)
        m, ms = fit(xa, ya, xv, yv, weights(trs["train"] + trs["test"]), weights(trs["val"]), report, key)
        qb = to_int8(m, xa[:300])
        probs[f"{key}_y"] = yb
        report.update(member_metrics(key, ms, xb, yb, probs))
        report[f"{key}_float"] = metrics(float_probs(m, xb), yb)
        pb = tflite_probs(qb, xb)
        probs[f"{key}_int8"] = pb
        report[f"{key}_int8"] = metrics(pb, yb)
        report.update(subset_metrics(f"{key}_int8", pb, yb, te))
        print(a, "->", b, report[f"{key}_int8"], flush=True)
        name = name or m.name
    name += TAG
    report["seconds"] = round(time.time() - t0)
    os.makedirs(WORK, exist_ok=True)
    json.dump(report, open(os.path.join(WORK, f"{name}_report.json"), "w"), indent=1)
    np.savez(os.path.join(WORK, f"{name}_probs.npz"), **probs)
    if SHIP:
        with open(os.path.join(OUT, "mask_resnet_int8.tflite"), "wb") as f:
            f.write(q)
        json.dump(report, open(os.path.join(WORK, "classifier_report.json"), "w"), indent=1)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
