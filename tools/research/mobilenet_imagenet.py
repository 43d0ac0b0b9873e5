"""The ImageNet-pretrained MobileNetV1-0.25 in ../shared (the backbone RetinaFace was trained
from, before any face data) rebuilt in Keras with its own weights, for initialising the mask
classifier from general ImageNet features instead of the detector's WIDER FACE ones.

The checkpoint (`mobilenetV1X0.25_pretrain.tar`, biubug6/Pytorch_Retinaface, MIT) is pytorch/examples'
ImageNet trainer output (epoch 18, top-1 46.6 %); its first BatchNorm's running variance (0.25-25,
not thousands) shows it saw torchvision-normalised RGB, so that normalisation is the model's
first layer and the input stays RGB pixels 0..255. BatchNorm stays unfolded so fine-tuning can
move it; PyTorch's symmetric padding is explicit, as in retinaface_keras."""
import numpy as np
import tensorflow as tf

from pipeline import common
from research import torch_legacy

keras = tf.keras
CKPT = f"{common.SHARED}/models/retinaface/mobilenetV1X0.25_pretrain.tar"
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
# strides of each stage's depthwise-separable blocks (stage1.0 is the 8-channel stem, so
# stage 1's blocks are numbered from 1); channels come from the checkpoint's weights
STRIDES = {1: (1, 2, 1, 2, 1), 2: (2, 1, 1, 1, 1, 1), 3: (2, 1)}


def state_dict(ckpt=CKPT):
    """The checkpoint's weights by PyTorch name, without DataParallel's `module.` prefix."""
    return {k.removeprefix("module."): v for k, v in torch_legacy.load(ckpt)["state_dict"].items()}


def _conv_bn_leaky(x, sd, conv, bn, stride, depthwise=False):
    """conv (no bias) -> BatchNorm (PyTorch eps / momentum) -> LeakyReLU 0.1, weights from sd."""
    w = sd[f"{conv}.weight"]
    k = w.shape[2]
    if k == 3 and stride == 2:
        x = keras.layers.ZeroPadding2D(1)(x)
    pad = "valid" if k == 1 or stride == 2 else "same"
    if depthwise:
        layer = keras.layers.DepthwiseConv2D(k, stride, padding=pad, use_bias=False)
        x = layer(x)
        layer.set_weights([w.transpose(2, 3, 0, 1)])
    else:
        layer = keras.layers.Conv2D(w.shape[0], k, stride, padding=pad, use_bias=False)
        x = layer(x)
        layer.set_weights([w.transpose(2, 3, 1, 0)])
    norm = keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9)
    x = norm(x)
    norm.set_weights([sd[f"{bn}.weight"], sd[f"{bn}.bias"], sd[f"{bn}.running_mean"], sd[f"{bn}.running_var"]])
    return keras.layers.LeakyReLU(negative_slope=0.1)(x)


def build(size, stage=3, ckpt=CKPT):
    """The body up to the end of `stage` (1, 2, 3: stride 8 / 16 / 32, 64 / 128 / 256 channels);
    input RGB pixels 0..255 of shape (size, size, 3)."""
    sd = state_dict(ckpt)
    inp = keras.Input((size, size, 3), name="image_rgb")
    x = keras.layers.Rescaling(list(1 / (255 * IMAGENET_STD)), offset=list(-IMAGENET_MEAN / IMAGENET_STD), name="imagenet_norm")(inp)
    x = _conv_bn_leaky(x, sd, "stage1.0.0", "stage1.0.1", 2)
    for st in range(1, stage + 1):
        for i, stride in enumerate(STRIDES[st], start=1 if st == 1 else 0):
            p = f"stage{st}.{i}"
            x = _conv_bn_leaky(x, sd, f"{p}.0", f"{p}.1", stride, depthwise=True)
            x = _conv_bn_leaky(x, sd, f"{p}.3", f"{p}.4", 1)
    return keras.Model(inp, x, name=f"mobilenet025_imagenet_stage{stage}")


if __name__ == "__main__":
    # Check the normalisation: the first BatchNorm's input statistics on real face crops should
    # match its ImageNet running statistics in scale.
    import json
    import os

    sd = state_dict()
    faces = json.load(open(os.path.join(common.WORK, "faces.json")))["faces"][:200]
    m = build(96, 1)
    conv = keras.Model(m.input, m.layers[3].output)  # after the stem conv, before its BatchNorm
    from pipeline.classifier import load_crops

    x, _ = load_crops(faces, 96)
    y = conv.predict(x.astype(np.float32), verbose=0)
    print("conv out var (crops)   ", np.round(y.reshape(-1, 8).var(0), 2))
    print("BN running var (ImageNet)", np.round(sd["stage1.0.1.running_var"], 2))
    print("body output", m.output.shape, "parameters", m.count_params())
