"""Shared geometry for the model pipeline. Mirrors src/vision/{preprocess,priors,decode,crop}.rs
(same sampling positions, clamping, padding and decoding; the Rust letterbox uses 8-bit fixed-point
weights, so pixels may differ by one level), so that what the models are calibrated, trained and
measured on is what the product feeds. The shipped-runtime AP is measured through the binary itself."""
import hashlib
import os
import xml.etree.ElementTree as ET

import numpy as np
from PIL import Image, ImageOps

TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(TOOLS)  # the repository
WORK = os.path.join(TOOLS, "work")  # scratch outputs (gitignored): weights, reports, comparison models
OUT = os.path.join(ROOT, "models", "quantized")  # the shipped models
SHARED = os.environ.get("MASKGATE_SHARED", os.path.join(ROOT, "..", "shared"))
SEED = 1234

# RetinaFace mobilenet0.25 configuration (biubug6/Pytorch_Retinaface cfg_mnet).
MIN_SIZES = [[16, 32], [64, 128], [256, 512]]
STEPS = [8, 16, 32]
VARIANCES = (0.1, 0.2)
# Mean pixel subtracted inside the detector graph, RGB order (the original is BGR 104,117,123).
DET_MEAN_RGB = (123.0, 117.0, 104.0)

# Classifier face framing: square of side max(w, h) * (1 + 2 * CROP_MARGIN) centred on the box.
CROP_MARGIN = 0.15


def load_rgb(path):
    """Decode by content, honour EXIF orientation, return HxWx3 uint8 RGB."""
    im = Image.open(path)
    im = ImageOps.exif_transpose(im)
    return np.asarray(im.convert("RGB"))


def _bilinear_tables(dst, src, scale, offset=0.0):
    # Pixel-centre mapping, clamped at the edges: src = (d + 0.5) / scale - 0.5 + offset
    x = (np.arange(dst) + 0.5) / scale - 0.5 + offset
    x = np.clip(x, 0, src - 1)
    x0 = np.floor(x).astype(np.int64)
    x1 = np.minimum(x0 + 1, src - 1)
    return x0, x1, (x - x0).astype(np.float32)


def letterbox(img, H, W):
    """Resize keeping aspect into an HxW canvas, image at the top-left, rest filled with the mean.
    Returns (canvas float32 RGB 0..255, scale)."""
    h, w = img.shape[:2]
    s = min(W / w, H / h)
    nw, nh = max(1, min(W, int(np.floor(w * s + 0.5)))), max(1, min(H, int(np.floor(h * s + 0.5))))
    sx, sy = nw / w, nh / h
    x0, x1, fx = _bilinear_tables(nw, w, sx)
    y0, y1, fy = _bilinear_tables(nh, h, sy)
    f = img.astype(np.float32)
    top = f[y0][:, x0] * (1 - fx)[None, :, None] + f[y0][:, x1] * fx[None, :, None]
    bot = f[y1][:, x0] * (1 - fx)[None, :, None] + f[y1][:, x1] * fx[None, :, None]
    out = top * (1 - fy)[:, None, None] + bot * fy[:, None, None]
    canvas = np.empty((H, W, 3), np.float32)
    canvas[:] = np.array(DET_MEAN_RGB, np.float32)
    canvas[:nh, :nw] = np.floor(out + 0.5)
    return canvas, s


def priors(H, W):
    out = []
    for k, step in enumerate(STEPS):
        fh, fw = -(-H // step), -(-W // step)
        for i in range(fh):
            for j in range(fw):
                for m in MIN_SIZES[k]:
                    out.append(((j + 0.5) * step / W, (i + 0.5) * step / H, m / W, m / H))
    return np.array(out, np.float32)


def decode(loc, conf, landm, pri, H, W, scale, thresh=0.02, nms_iou=0.4, top_k=5000):
    """Raw outputs -> (N, 15) rows [x1 y1 x2 y2 score lx0 ly0 ... lx4 ly4] in original pixels."""
    scores = conf[:, 1]
    keep = np.where(scores > thresh)[0]
    keep = keep[np.argsort(-scores[keep])][:top_k]
    p = pri[keep]
    l = loc[keep]
    cx = p[:, 0] + l[:, 0] * VARIANCES[0] * p[:, 2]
    cy = p[:, 1] + l[:, 1] * VARIANCES[0] * p[:, 3]
    bw = p[:, 2] * np.exp(l[:, 2] * VARIANCES[1])
    bh = p[:, 3] * np.exp(l[:, 3] * VARIANCES[1])
    boxes = np.stack([(cx - bw / 2) * W, (cy - bh / 2) * H, (cx + bw / 2) * W, (cy + bh / 2) * H], 1) / scale
    lm = landm[keep].reshape(-1, 5, 2)
    lx = (p[:, None, 0] + lm[:, :, 0] * VARIANCES[0] * p[:, None, 2]) * W / scale
    ly = (p[:, None, 1] + lm[:, :, 1] * VARIANCES[0] * p[:, None, 3]) * H / scale
    dets = np.concatenate([boxes, scores[keep][:, None], np.stack([lx, ly], 2).reshape(-1, 10)], 1)
    return dets[nms(dets[:, :5], nms_iou)]


def iou_matrix(a, b):
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    aa = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    ab = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(aa[:, None] + ab[None, :] - inter, 1e-9)


def nms(dets, thr):
    order = np.argsort(-dets[:, 4], kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        if order.size == 1:
            break
        ious = iou_matrix(dets[i:i + 1, :4], dets[order[1:], :4])[0]
        order = order[1:][ious <= thr]
    return np.array(keep, np.int64)


def crop_square(img, box, size):
    """Classifier framing: square around the box centre, side max(w,h)*(1+2*margin), bilinear
    sampled to size x size; outside the image is black. Returns uint8 RGB."""
    x1, y1, x2, y2 = box[:4]
    side = max(x2 - x1, y2 - y1) * (1 + 2 * CROP_MARGIN)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left, top = cx - side / 2, cy - side / 2
    s = size / side
    h, w = img.shape[:2]
    xs = (np.arange(size) + 0.5) / s - 0.5 + left
    ys = (np.arange(size) + 0.5) / s - 0.5 + top
    f = img.astype(np.float32)

    def tab(v, n):
        v0 = np.floor(v).astype(np.int64)
        fr = (v - v0).astype(np.float32)
        return v0, v0 + 1, fr

    x0, x1i, fx = tab(xs, w)
    y0, y1i, fy = tab(ys, h)

    def sample(yy, xx):
        valid = ((yy >= 0) & (yy < h))[:, None] & ((xx >= 0) & (xx < w))[None, :]
        v = f[np.clip(yy, 0, h - 1)][:, np.clip(xx, 0, w - 1)]
        return v * valid[:, :, None]

    top = sample(y0, x0) * (1 - fx)[None, :, None] + sample(y0, x1i) * fx[None, :, None]
    bot = sample(y1i, x0) * (1 - fx)[None, :, None] + sample(y1i, x1i) * fx[None, :, None]
    out = top * (1 - fy)[:, None, None] + bot * fy[:, None, None]
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


def voc_boxes(xml_path):
    root = ET.parse(xml_path).getroot()
    out = []
    for obj in root.iter("object"):
        name = obj.find("name").text
        bb = obj.find("bndbox")
        out.append((name, [float(bb.find(t).text) for t in ("xmin", "ymin", "xmax", "ymax")]))
    return root.find("filename").text, out


def scene_set():
    base = os.path.join(SHARED, "data", "face-mask-detection")
    items = []
    for x in sorted(os.listdir(os.path.join(base, "annotations"))):
        fn, boxes = voc_boxes(os.path.join(base, "annotations", x))
        items.append((os.path.join(base, "images", fn), boxes))
    return items


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()
