"""Rebuilds the official RetinaFace mobilenet0.25 as a Keras (NHWC) graph for any input size,
taking every weight from the ONNX export in ../shared (BatchNorm already folded into the convs).

The graph is walked node by node, so the layer wiring is the official one, not a re-typing of it.
Differences from the ONNX graph, all intentional:
  * input is RGB pixels 0..255 (NHWC); the mean is subtracted by the first layer, so an int8 input
    tensor carries plain pixels (scale 1, zero point -128) and the product feeds them directly;
  * the first conv's input channels are reversed (the original network reads BGR);
  * PyTorch's symmetric padding is made explicit (Keras 'same' pads stride-2 convs differently);
  * FPN upsampling is nearest with floor/asymmetric coordinates to the exact size of the lateral
    feature map, as in PyTorch F.interpolate(mode='nearest'), so odd sizes (320x240 -> 8x10) work.
"""
import numpy as np
import onnx
import tensorflow as tf
from onnx import helper, numpy_helper

from pipeline import common

keras = tf.keras
ONNX_PATH = f"{common.SHARED}/models/retinaface/FaceDetector_mnet025_640x640.onnx"


class NearestResizeTo(keras.layers.Layer):
    def call(self, x, like):
        size = tf.shape(like)[1:3]
        return tf.compat.v1.image.resize_nearest_neighbor(x, size, align_corners=False, half_pixel_centers=False)


def equalize(g, init, iters=4):
    """Cross-layer equalization (Nagel et al., "Data-Free Quantization", 2019). For every
    conv A -> LeakyReLU -> conv B chain whose middle tensor has no other consumer, output channel
    c of A is divided by s_c and input channel c of B multiplied by it; LeakyReLU is positively
    homogeneous, so the float function is unchanged. s_c = sqrt(rA_c / rB_c) gives both weight
    ranges sqrt(rA_c * rB_c), which evens out per-channel activation ranges that one int8 scale
    per tensor must cover (the cause of RetinaFace's known int8 collapse). Returns pairs done."""
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    pairs = []
    for a in g.node:
        if a.op_type != "Conv":
            continue
        ca = consumers.get(a.output[0], [])
        if len(ca) != 1 or ca[0].op_type != "LeakyRelu":
            continue
        cb = consumers.get(ca[0].output[0], [])
        if len(cb) != 1 or cb[0].op_type != "Conv":
            continue
        pairs.append((a, cb[0]))
    for _ in range(iters):
        for a, b in pairs:
            wa, ba, wb = init[a.input[1]], init[a.input[2]], init[b.input[1]]
            ra = np.abs(wa).reshape(wa.shape[0], -1).max(1)
            depthwise = wb.shape[1] == 1 and wb.shape[0] == wa.shape[0]
            rb = np.abs(wb).reshape(wb.shape[0], -1).max(1) if depthwise else np.abs(wb).max(axis=(0, 2, 3))
            s = np.sqrt(np.maximum(ra, 1e-8) / np.maximum(rb, 1e-8)).astype(np.float32)
            init[a.input[1]] = wa / s[:, None, None, None]
            init[a.input[2]] = ba / s
            init[b.input[1]] = wb * (s[:, None, None, None] if depthwise else s[None, :, None, None])
    return len(pairs)


# backbone stage outputs (MobileNet-0.25 body): strides 8 / 16 / 32, 64 / 128 / 256 channels
STAGE_OUTPUTS = {
    1: "/body/stage1/stage1.5/stage1.5.5/LeakyRelu_output_0",
    2: "/body/stage2/stage2.5/stage2.5.5/LeakyRelu_output_0",
    3: "/body/stage3/stage3.1/stage3.1.5/LeakyRelu_output_0",
}


def layer_name(node):
    """Keras name of an ONNX conv node ('/body/stage1/stage1.0/stage1.0.0/Conv' ->
    'body_stage1_stage1.0_stage1.0.0'), so that training can pick the layers it updates."""
    return node.name.strip("/").removesuffix("/Conv").replace("/", "_")


def build(H, W, onnx_path=ONNX_PATH, cle=True, batch=1, outputs=("output0", "output1", "output2"), weights=None):
    """The detector (default), or with `outputs` any of its tensors, e.g. a backbone stage.
    `weights`: a `.weights.h5` file written by `detector_train.py` (the fine-tuned detector);
    the graph is the same for every input size, so weights trained at one size load at any."""
    m = onnx.load(onnx_path)
    g = m.graph
    init = {i.name: numpy_helper.to_array(i).astype(np.float32) for i in g.initializer}
    if cle:
        equalize(g, init)
    inp = keras.Input((H, W, 3), batch_size=batch, name="image_rgb")
    x = keras.layers.Rescaling(1.0, offset=[-v for v in common.DET_MEAN_RGB], name="sub_mean")(inp)
    t = {"input0": x}
    producers = {o: n for n in g.node for o in n.output}
    first_conv = True
    for n in g.node:
        a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
        op = n.op_type
        if op == "Conv":
            w = init[n.input[1]].astype(np.float32)
            b = init[n.input[2]].astype(np.float32)
            group = a.get("group", 1)
            stride = a["strides"][0]
            pad = a["pads"][0]
            k = w.shape[2]
            if first_conv:
                w = w[:, ::-1, :, :]  # BGR -> RGB
                first_conv = False
            y = t[n.input[0]]
            if pad:
                y = keras.layers.ZeroPadding2D(pad)(y)
            if group == 1:
                layer = keras.layers.Conv2D(w.shape[0], k, strides=stride, padding="valid", name=layer_name(n))
                y = layer(y)
                layer.set_weights([w.transpose(2, 3, 1, 0), b])
            else:
                assert group == w.shape[0] and w.shape[1] == 1
                layer = keras.layers.DepthwiseConv2D(k, strides=stride, padding="valid", name=layer_name(n))
                y = layer(y)
                layer.set_weights([w.transpose(2, 3, 0, 1), b])
            t[n.output[0]] = y
        elif op == "LeakyRelu":
            t[n.output[0]] = keras.layers.LeakyReLU(negative_slope=a["alpha"])(t[n.input[0]])
        elif op == "Relu":
            t[n.output[0]] = keras.layers.ReLU()(t[n.input[0]])
        elif op == "Add":
            t[n.output[0]] = keras.layers.Add()([t[n.input[0]], t[n.input[1]]])
        elif op == "Concat":
            if all(i in t for i in n.input):
                ins = [t[i] for i in n.input]
                axis = -1 if len(ins[0].shape) == 4 else 1
                t[n.output[0]] = keras.layers.Concatenate(axis=axis)(ins)
        elif op == "Resize":
            # sizes <- Concat <- Slice <- Shape(lateral): find the tensor whose size we match.
            c = producers[n.input[3]]
            s = producers[c.input[0]]
            shp = producers[s.input[0]]
            assert shp.op_type == "Shape"
            # The lateral map is the other operand of the Add that consumes this Resize.
            add = next(q for q in g.node if q.op_type == "Add" and n.output[0] in q.input)
            lateral = next(i for i in add.input if i != n.output[0])
            t[n.output[0]] = NearestResizeTo()(t[n.input[0]], t[lateral])
        elif op == "Transpose":
            assert list(a["perm"]) == [0, 2, 3, 1]
            t[n.output[0]] = t[n.input[0]]  # already NHWC
        elif op == "Reshape":
            y = t[n.input[0]]
            c = y.shape[-1] // 2  # two anchors per location
            t[n.output[0]] = keras.layers.Reshape((-1, c))(y)
        elif op == "Softmax":
            t[n.output[0]] = keras.layers.Softmax(axis=-1)(t[n.input[0]])
        elif op in ("Constant", "Shape", "Slice", "Gather", "Unsqueeze"):
            pass
        else:
            raise ValueError(f"unhandled op {op}")
    outs = [t[o] for o in outputs]
    model = keras.Model(inp, outs if len(outs) > 1 else outs[0], name=f"retinaface_mnet025_{W}x{H}")
    if weights:
        model.load_weights(weights)
    return model


if __name__ == "__main__":
    import onnxruntime as ort

    model = build(640, 640)
    img = common.load_rgb(common.scene_set()[0][0])
    canvas, _ = common.letterbox(img, 640, 640)
    ours = [o.numpy() for o in model(canvas[None])]
    bgr = canvas[..., ::-1] - np.array(common.DET_MEAN_RGB[::-1], np.float32)
    sess = ort.InferenceSession(ONNX_PATH)
    ref = sess.run(None, {"input0": bgr.transpose(2, 0, 1)[None].astype(np.float32)})
    for name, a, b in zip(["loc", "conf", "landmarks"], ours, ref):
        print(name, a.shape, "max abs diff vs ONNX:", float(np.abs(a - b).max()))
