"""Reads a PyTorch checkpoint in the legacy (pre-1.6, non-zip) serialization format into numpy
arrays, without PyTorch: the ImageNet MobileNet-0.25 in ../shared is stored that way, and torch
is a 700 MB dependency for one file read.

Layout (torch/serialization.py `_legacy_load`): magic number, protocol version and system info
pickles; the object pickle, whose tensors reference storages by persistent id; the list of
storage keys; then each storage in that order as an int64 element count and its raw bytes."""
import pickle
import struct

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C
DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
          "LongStorage": np.int64, "IntStorage": np.int32, "ByteStorage": np.uint8}


class _Storage:
    def __init__(self, dtype, numel):
        self.dtype, self.numel, self.data = dtype, numel, None


class _Tensor:
    """A view on a storage, resolved to an ndarray once the storages are read."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self):
        item = self.storage.data.itemsize
        return np.lib.stride_tricks.as_strided(
            self.storage.data[self.offset:], self.size, [s * item for s in self.stride]).copy()


class _StateDict(dict):
    """OrderedDict stand-in: state_dicts carry a `_metadata` attribute that a plain dict cannot."""


def _rebuild_tensor(storage, offset, size, stride, *_):
    return _Tensor(storage, offset, size, stride)


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, storages):
        super().__init__(f, encoding="latin1")
        self.storages = storages

    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in DTYPES:
            return DTYPES[name]
        if module == "collections" and name == "OrderedDict":
            return _StateDict
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in checkpoint")

    def persistent_load(self, pid):
        kind, dtype, key, _location, numel = pid[:5]
        if kind != "storage" or (len(pid) > 5 and pid[5] is not None):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid[:2]}")
        if key not in self.storages:
            self.storages[key] = _Storage(dtype, numel)
        return self.storages[key]


def _resolve(obj):
    if isinstance(obj, _Tensor):
        return obj.array()
    if isinstance(obj, dict):
        return {k: _resolve(v) for k, v in obj.items()}  # drops _metadata (BatchNorm versions)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(v) for v in obj)
    return obj


def load(path):
    """The checkpoint's object (dicts, lists, numbers) with every tensor as an ndarray."""
    with open(path, "rb") as f:
        if pickle.load(f) != MAGIC:
            raise ValueError(f"{path}: not a legacy PyTorch checkpoint")
        pickle.load(f)  # protocol version
        if not pickle.load(f).get("little_endian", True):
            raise ValueError(f"{path}: big-endian checkpoint")
        storages = {}
        obj = _Unpickler(f, storages).load()
        for key in pickle.load(f):
            st = storages[key]
            (n,) = struct.unpack("<q", f.read(8))
            if n != st.numel:
                raise ValueError(f"{path}: storage {key} holds {n} elements, expected {st.numel}")
            st.data = np.frombuffer(f.read(n * np.dtype(st.dtype).itemsize), st.dtype)
    return _resolve(obj)
