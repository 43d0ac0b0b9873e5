"""Experiments on the classifier recipe (pipeline/classifier.py), measured and reported, never
shipped: other bodies, ensembles, distillation, mixup, synthetic chin masks, crowd occlusion, far
faces, pooled input, weight averaging, class balancing. Each flag is one change to the shipped
recipe; models/README.md gives what each measured. Run from tools/ (tools/.venv, plus
research/requirements.txt for --arch dlib_frozen):

    python -m research.classifier_variants --arch ensemble --combine min
    python -m research.classifier_variants --arch ensemble --combine stack   # combiner fitted on validation
    python -m research.classifier_variants --arch imagenet                   # body initialised from ImageNet
    python -m research.classifier_variants --arch ensemble --combine min --members resnet,imagenet
    python -m research.classifier_variants --arch ensemble --members resnet,dlib_frozen   # + dlib face body
    python -m research.classifier_variants --arch dlib_frozen --lowres 0.3 --tag _lr30    # that member alone, far faces
    python -m research.classifier_variants --lowres 0.3        # far faces: training faces resampled small
    python -m research.classifier_variants --pool 2            # the ResNet sees every face at 48 px
    python -m research.classifier_variants --ema 0.995 --cross 0   # keep the best moving average of the weights
    python -m research.classifier_variants --distill 0.5 --members resnet,imagenet --combine min --cross 0
                                                               # the ResNet learns from an ensemble's P(mask)
    python -m research.classifier_variants --mixup 0.2         # training faces blended in pairs (mixup)
    python -m research.classifier_variants --lowres 0.3 --syn-chin 0.5 --cross cls   # held-out, then crops -> scenes
    python -m research.classifier_variants --syn-chin 0.5 --no-heldout --cross cls   # only crops -> scenes

The recipe's own flags (--size, --width, --epochs, --incorrect-weight, --seed, --cross,
--no-heldout, --tag) are pipeline/classifier.py's. Reports and probabilities go to tools/work/
under the model's name, as the pipeline writes them; models/quantized/ is never touched.
"""
import argparse
import os

import numpy as np
import tensorflow as tf

from pipeline import classifier as C
from pipeline import common
from research import stats

keras = tf.keras
ARCHS = ("resnet", "retina", "imagenet", "dlib_frozen", "ensemble")
MEMBER_ARCHS = ("resnet", "retina", "retina_frozen", "imagenet", "imagenet_frozen", "dlib_frozen")


def low_resolution(x, size):
    """The face as a distant camera sees it: area-sampled down to a crop side of 12-64 px
    (log-uniform), then bilinear up again, as crop_square upsamples a small detection. Scene faces
    are small (median 25 px wide) and mostly masked, crop-source faces large (median 123 px) and
    half unmasked, so a crop-trained model may read low resolution itself as "mask"."""
    side = tf.cast(tf.round(tf.exp(tf.random.uniform([], np.log(12.0), np.log(64.0)))), tf.int32)
    small = tf.image.resize(x, [side, side], method="area")
    return tf.image.resize(small, [size, size], method="bilinear")


def logit(p):
    """log-odds of P(mask): a 2-way softmax's logit difference, recovered from its output."""
    p = np.clip(p.astype(np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


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
        p_mask = C.float_probs(self.model, self.x)
        p_true = np.where(self.y == 1, p_mask, 1 - p_mask)
        loss = float(-np.mean(np.log(np.clip(p_true, 1e-7, 1))))
        acc = float(np.mean((p_mask >= 0.5) == self.y))
        print(f"epoch {epoch + 1}: averaged weights val_loss {loss:.4f} val_accuracy {acc:.4f}", flush=True)
        if loss < self.best:
            self.best, self.best_w = loss, avg
        self.model.set_weights(raw)

    def on_train_end(self, logs=None):
        self.model.set_weights(self.best_w)


class Variant(C.Recipe):
    """The shipped recipe with the experiments' switches (all off by default, which is the
    shipped recipe itself)."""

    def __init__(self, a):
        super().__init__(a.size, a.width, a.epochs, a.incorrect_weight, a.seed)
        self.a = a
        self.soft_targets = a.distill > 0 or a.mixup > 0
        self.teacher = None

    # data
    def face_augment(self, x):
        if self.a.lowres > 0:
            x = tf.cond(tf.random.uniform([]) < self.a.lowres, lambda: low_resolution(x, self.size), lambda: x)
        return x

    def batch_maps(self):
        return ([self.synthetic_chin_masks] if self.a.syn_chin > 0 else []) + ([self.head_occlusion] if self.a.head_occlude > 0 else [])

    def target_maps(self):
        return ([self.distilled] if self.teacher is not None else []) + ([self.mixup] if self.a.mixup > 0 else [])

    def synthetic_chin_masks(self, x, y, *w):
        """--syn-chin p: with probability p, a masked face in the batch becomes a chin mask
        labelled no mask: the upper part (eyes, nose, down to 0.55-0.7 of the crop) of an unmasked
        face of the same batch over the masked face's mask, taken from 0.45 of the crop downwards.
        The crops source has masks only over the nose; its ~80 real chin masks are all scene faces."""
        s, n = self.size, tf.shape(x)[0]
        partner = tf.random.shuffle(tf.range(n))
        apply = (y == 1) & (tf.gather(y, partner) == 0) & (tf.random.uniform([n]) < self.a.syn_chin)
        top = tf.cast(tf.random.uniform([n, 1], 0.55, 0.7) * s, tf.int32)
        rows = tf.range(s)[None, :]
        lower = tf.gather(x, tf.clip_by_value(rows - top + int(0.45 * s), 0, s - 1), axis=1, batch_dims=1)
        comp = tf.where((rows < top)[:, :, None, None], tf.gather(x, partner), lower)
        x = tf.where(apply[:, None, None, None], comp, x)
        return (x, tf.where(apply, tf.zeros_like(y), y), *w)

    def head_occlusion(self, x, y, *w):
        """--head-occlude p: with probability p, an unmasked face's mouth and chin (from 0.5-0.62
        of the crop down) are hidden behind the top of another face's head from the same batch,
        shifted sideways; the label stays no mask. In crowd photos the head in front hides the
        mouth, and a mouth that cannot be seen must not read as a mask."""
        s, n = self.size, tf.shape(x)[0]
        partner = tf.random.shuffle(tf.range(n))
        apply = (y == 0) & (tf.random.uniform([n]) < self.a.head_occlude)
        top = tf.cast(tf.random.uniform([n, 1], 0.5, 0.62) * s, tf.int32)
        rows = tf.range(s)[None, :]
        head = tf.gather(tf.gather(x, partner), tf.clip_by_value(rows - top, 0, s - 1), axis=1, batch_dims=1)
        head = tf.roll(head, tf.random.uniform([], -s // 3, s // 3 + 1, tf.int32), axis=2)
        occluded = tf.where((rows >= top)[:, :, None, None], head, x)
        return (tf.where(apply[:, None, None, None], occluded, x), y, *w)

    def distilled(self, a, hard, *c):
        """(1 - d) * one-hot + d * the teacher's (P(no mask), P(mask)) of the same augmented
        pixels, softened at temperature --distill-t (how sure, not only which)."""
        d = self.a.distill
        p = tf.clip_by_value(self.teacher(a, training=False)[:, 1:2], 1e-6, 1 - 1e-6)
        p = tf.sigmoid(tf.math.log(p / (1 - p)) / self.a.distill_t)
        return (a, (1 - d) * hard + d * tf.concat([1 - p, p], 1), *c)

    def mixup(self, x, y, *w):
        """--mixup alpha: pixels, 2-vector targets and weights become lam * own + (1 - lam) * a
        partner's from the same batch, lam = max(b, 1 - b) with b ~ Beta(alpha, alpha), a
        regulariser for small from-scratch training sets."""
        n = tf.shape(x)[0]
        partner = tf.random.shuffle(tf.range(n))
        g1 = tf.random.gamma([n], self.a.mixup)
        g2 = tf.random.gamma([n], self.a.mixup)
        lam = g1 / (g1 + g2 + 1e-12)
        lam = tf.maximum(lam, 1 - lam)
        x = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * tf.gather(x, partner)
        y = lam[:, None] * y + (1 - lam[:, None]) * tf.gather(y, partner)
        return (x, y, *(lam * v + (1 - lam) * tf.gather(v, partner) for v in w))

    # models
    def pretrained_hybrid(self, freeze, source="retina"):
        """A pretrained MobileNet-0.25 body up to --stage, one residual block of 8*width channels,
        global average pooling. source "retina": the detector's body (WIDER FACE weights);
        "imagenet": the ImageNet backbone RetinaFace was trained from (no face data)."""
        stage = self.a.stage
        if source == "imagenet":
            from research import mobilenet_imagenet

            body = mobilenet_imagenet.build(self.size, stage)
        else:
            from pipeline import retinaface_keras

            body = retinaface_keras.build(self.size, self.size, batch=None, outputs=(retinaface_keras.STAGE_OUTPUTS[stage],))
        body.trainable = not freeze
        inp = keras.Input((self.size, self.size, 3), name="face_rgb")
        x = body(inp)  # each body normalises its own input: the model takes RGB pixels 0..255
        x = C.basic_block(x, self.width * 8, 2)
        prefix = "retina" if source == "retina" else "imnet"
        return C.classifier_head(inp, x, f"mask_{prefix}{stage}{'f' if freeze else ''}_res_{self.size}_w{self.width}")

    def dlib_hybrid(self):
        """dlib's face-recognition ResNet (face-pretrained, public domain; research/dlib_resnet.py)
        up to its 8 x 8 x 128 level, frozen, then one residual block of 256 channels and global
        average pooling: dlib_resnet.py head's block, here trained end to end with the recipe's
        augmentation (its dropout 0.2 instead of 0.3, AdamW from 2e-3). The body reads 150 px;
        another --size is resized to it inside the graph, so the ensemble keeps one input tensor."""
        from research import dlib_resnet

        body = dlib_resnet.build(upto=2)
        body.trainable = False
        inp = keras.Input((self.size, self.size, 3), name="face_rgb")
        x = inp if self.size == dlib_resnet.SIZE else keras.layers.Resizing(dlib_resnet.SIZE, dlib_resnet.SIZE, "bilinear")(inp)
        return C.classifier_head(inp, C.basic_block(body(x), 256, 2), f"mask_dlib2f_res_{self.size}")

    def build(self, arch=None):
        arch = arch or self.a.arch
        if arch == "dlib_frozen":
            return self.dlib_hybrid()
        if arch in ("retina", "imagenet"):
            return self.pretrained_hybrid(self.a.freeze, arch)
        if arch in ("retina_frozen", "imagenet_frozen"):
            return self.pretrained_hybrid(True, arch.removesuffix("_frozen"))
        return C.resnet(self.size, self.width, self.a.pool)

    def model_name(self, name):
        if self.teacher is not None:
            name = f"{name}_kd{round(100 * self.a.distill)}t{self.a.distill_t:g}"
        if self.a.mixup > 0:
            name = f"{name}_mix{round(100 * self.a.mixup)}"
        return super().model_name(name)

    # training
    def prepare(self):
        if self.a.distill > 0:
            self.teacher = self.load_teacher()

    def load_teacher(self):
        """The --members' float weights from an earlier --arch ensemble run, combined by --combine."""
        members = []
        for arch in self.a.members:
            m = self.build(arch)
            path = os.path.join(C.WORK, f"{m.name}{self.a.tag_teacher}.weights.h5")
            if not os.path.exists(path):
                raise SystemExit(f"--distill: no {path}; run --arch ensemble --members {','.join(self.a.members)} "
                                 f"--cross 0 --tag '{self.a.tag_teacher}' first")
            m.load_weights(path)
            m.trainable = False
            members.append(m)
        return self.ensemble(members)

    def keep_best(self, epochs, xva, yva):
        if self.a.ema > 0:
            return WeightAverage(self.a.ema, xva, yva)
        return super().keep_best(epochs, xva, yva)

    def class_weight(self, ytr):
        """--balance: classes weighted inversely to their frequency."""
        if not self.a.balance:
            return None
        counts = np.bincount(ytr, minlength=2)
        return {c: float(len(ytr) / (2 * counts[c])) for c in (0, 1)}

    def epochs_of(self, arch=None):
        """dlib_frozen trains only a head on a fixed body (--dlib-epochs); the rest --epochs (an
        ensemble's report shows --epochs, its ResNet member's)."""
        return self.a.dlib_epochs if (arch or self.a.arch) == "dlib_frozen" else self.epochs

    # ensembles
    def fit(self, xtr, ytr, xva, yva, wtr, wva, report, prefix):
        if self.a.arch != "ensemble":
            return self.train(xtr, ytr, xva, yva, self.epochs_of(), wtr, self.a.arch), []
        members = [self.train(xtr, ytr, xva, yva, self.epochs_of(arch), wtr, arch) for arch in self.a.members]
        stack = None
        if self.a.combine == "stack":
            stack = self.fit_stack(members, xva, yva, wva)
            report[f"{prefix}_stack"] = {"member_weights": dict(zip((m.name for m in members), stack[0])), "mask_bias": stack[1]}
        return self.ensemble(members, stack), members

    @staticmethod
    def fit_stack(members, x, y, w):
        """Member weights a and bias c of P(mask) = sigmoid(sum a_i * logit_i + c): weighted logistic
        regression by Newton's method on held-back faces (a small L2 keeps it defined when separable)."""
        feats = np.stack([logit(C.float_probs(m, x)) for m in members] + [np.ones(len(x))], 1)
        w = np.ones(len(x)) if w is None else w.astype(np.float64)
        # L2 1e-2 on the mean weighted loss, i.e. 1e-2 * sum(w) on the summed loss stats.logistic minimises
        theta = stats.logistic(feats, y, w, np.r_[np.full(len(members), 1e-2), 0.0] * w.sum())
        return [float(t) for t in theta[:-1]], float(theta[-1])

    def ensemble(self, members, stack=None):
        """One graph: the members' probabilities combined by --combine (dropout is off at
        inference). min of the two softmaxes no longer sums to 1; the product reads only index 1
        (mask). stack = (a, c): each member's last Dense is scaled by a_i and their logits are
        added with the bias c on the mask logit, so the one softmax computes
        sigmoid(sum a_i * logit_i + c)."""
        combine = self.a.combine
        inp = keras.Input((self.size, self.size, 3), name="face_rgb")
        if combine == "stack":
            (a, c), logits = stack, []
            for i, m in enumerate(members):
                kernel, bias = m.layers[-1].get_weights()  # classifier_head's Dense
                head = keras.layers.Dense(2)
                logits.append(head(keras.Model(m.inputs, m.layers[-2].output)(inp)))
                head.set_weights([a[i] * kernel, a[i] * bias + (np.array([0, c], np.float32) if i == 0 else 0)])
            out = keras.layers.Softmax()(keras.layers.Add()(logits))
        else:
            outs = [m(inp) for m in members]
            out = keras.layers.Minimum()(outs) if combine == "min" else keras.layers.Average()(outs)
        tag = "" if combine == "mean" else f"_{combine}"
        return keras.Model(inp, out, name="mask_ens_" + "_".join(m.name.removeprefix("mask_") for m in members) + tag)


def members(s):
    m = s.split(",")
    if not set(m) <= set(MEMBER_ARCHS) or len(m) < 2:
        raise argparse.ArgumentTypeError(f"{s}: two or more of {', '.join(MEMBER_ARCHS)}")
    return m


def share(s):
    v = float(s)
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"{s}: a probability, 0 to 1")
    return v


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    C.add_arguments(p)
    p.add_argument("--arch", choices=ARCHS, default="resnet",
                   help="resnet: the shipped ResNet-10 from scratch; retina / imagenet: RetinaFace's MobileNet-0.25 body "
                        "(WIDER FACE or ImageNet weights) up to --stage and one residual block; dlib_frozen: dlib's "
                        "face-recognition ResNet, frozen, and one trained block; ensemble: the --members combined by --combine")
    p.add_argument("--combine", choices=("mean", "min", "stack"), default="mean",
                   help="mean of P(mask), min (either member can say no mask), or stack (logistic regression on validation)")
    p.add_argument("--members", type=members, default=["resnet", "retina_frozen"], help=f"comma-separated, two or more of {', '.join(MEMBER_ARCHS)}")
    p.add_argument("--stage", type=int, choices=(1, 2, 3), default=2, help="how deep the pretrained MobileNet body goes")
    p.add_argument("--freeze", action="store_true", help="--arch retina / imagenet: keep the pretrained body fixed")
    p.add_argument("--dlib-epochs", type=int, default=15,
                   help="epochs of dlib_frozen (only its head trains; each epoch runs the 150 px body on every face, ~4x the ResNet's)")
    p.add_argument("--lowres", type=share, default=0.0, help="share of training faces resampled as if seen at 12-64 px (far faces)")
    p.add_argument("--syn-chin", type=share, default=0.0, help="share of masked faces turned into synthetic chin masks (labelled no mask)")
    p.add_argument("--head-occlude", type=share, default=0.0, help="share of unmasked faces whose mouth hides behind another head")
    p.add_argument("--pool", type=int, default=1, help="the ResNet averages POOL x POOL pixels first (sees every face at SIZE/POOL px)")
    p.add_argument("--ema", type=float, default=0.0, help="keep the best exponential moving average of the weights (momentum per step)")
    p.add_argument("--distill", type=share, default=0.0, help="share of each target taken from the --members teacher (needs --cross 0)")
    p.add_argument("--distill-t", type=float, default=2.0, help="temperature: the teacher's log-odds divided by T")
    p.add_argument("--tag-teacher", default="", help="suffix of the --distill teacher's weight files in tools/work")
    p.add_argument("--mixup", type=float, default=0.0, help="Beta(alpha, alpha) of mixup (pairs of training faces blended)")
    p.add_argument("--balance", action="store_true", help="weight classes inversely to their frequency")
    a = p.parse_args(argv)
    a.ship = False  # experiments never write models/quantized/
    C.check_arguments(p, a)
    if a.distill > 0 and (a.arch != "resnet" or a.combine == "stack" or a.cross != "0"):
        p.error("--distill needs --arch resnet, --combine mean or min and --cross 0 (the teacher knows only the held-out split)")
    if a.pool < 1 or a.ema < 0 or a.ema >= 1 or a.mixup < 0 or a.distill_t <= 0 or a.dlib_epochs < 1:
        p.error("--pool >= 1, 0 <= --ema < 1, --mixup >= 0, --distill-t > 0, --dlib-epochs >= 1")
    return a


def main(argv=None):
    a = parse_args(argv)
    C.run(Variant(a), False, a.cross, a.heldout, a.tag)


if __name__ == "__main__":
    main()
