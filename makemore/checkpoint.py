"""Files that cannot be left half-written or run code when read: atomic writes, JSON, and safetensors.

Every file is written to a temporary file, fsynced and renamed into place, so a kill never leaves half a file;
tensors are read only from safetensors (a pickle is recognised and refused, never loaded). What the files of a run
directory are and mean is ``makemore.rundir``'s business.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from makemore.errors import MakemoreError
from makemore.files import open_regular, parse_json

FORMAT_VERSION = 1
MAX_HEADER = 100 << 20  # safetensors' own limit on a header's length
MAX_TENSOR_FILE = 64 << 30  # a checkpoint larger than this is not one makemore wrote for a model it can train


# --- atomic writes ---------------------------------------------------------------------------------

def write_atomic(path: Path, data: bytes, *, replace: bool = True, taken: str = "", keep_mode: bool = False) -> None:
    """Write ``data`` to ``path`` so that ``path`` holds either the old or the new content, never a mix.

    A failure (disk full, read-only directory) leaves the old file untouched and is reported as a
    MakemoreError naming the file. Without ``replace``, a file at ``path`` (another process's, made meanwhile) is
    never replaced: the new one is linked into place (without hard links, its name is claimed first), and ``taken`` is what is said if one is there.
    With ``keep_mode``, a file replaced keeps its permissions and group (a private file stays private).
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp creates 0600; give the file the usual permissions
        if keep_mode:
            try:
                old = os.stat(path)
            except OSError:
                pass
            else:
                with contextlib.suppress(OSError):
                    os.fchown(fd, -1, old.st_gid)
                os.fchmod(fd, stat.S_IMODE(old.st_mode) & 0o1777)  # (never set-user or set-group id)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if the name is taken, where a rename would replace it
            except FileExistsError:
                raise MakemoreError(f"{path}: {taken or 'already exists'}") from None
            except OSError:  # a file system without hard links (FAT, some network mounts): the name is claimed
                try:  # by creating it (only one process can), then the whole file is renamed over the claim
                    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                except FileExistsError:
                    raise MakemoreError(f"{path}: {taken or 'already exists'}") from None
                os.replace(tmp, path)
            else:
                os.unlink(tmp)
    except BaseException as e:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if isinstance(e, OSError):
            kept = " (the previous version is kept)" if path.exists() else ""
            raise MakemoreError(f"{path}: cannot write ({e.strerror or e}){kept}") from None
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make renames inside ``path`` durable (best effort: not every file system supports it)."""
    try:
        dfd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def read_json(path: Path, limit: int = 1 << 30) -> Any:
    """A JSON file of at most ``limit`` bytes (a regular file; nested however deep, refused in one line)."""
    from makemore.files import read_json as read_bounded_json

    if not Path(path).exists():
        raise MakemoreError(f"{path}: missing")
    return read_bounded_json(path, limit)


# --- tensors -----------------------------------------------------------------------------------------

def save_tensors(path: Path, tensors: dict, metadata: dict[str, Any] | None = None) -> None:
    """Write ``tensors`` and ``metadata`` (JSON-encoded) atomically; a large integer tensor that is mostly zeros
    (an n-gram's counts) is stored as its non-zero cells (see ``pack_sparse``)."""
    from safetensors.torch import save

    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    seen = set()
    for k, v in tensors.items():  # tied weights (one matrix under two names): safetensors stores each name apart
        if v.data_ptr() in seen:
            tensors[k] = v.clone()
        seen.add(v.data_ptr())
    if SPARSE in (metadata or {}):
        raise ValueError(f"metadata key {SPARSE!r} is the checkpoint's own")
    tensors, shapes = pack_sparse(tensors)
    meta = {"format": f"makemore/{FORMAT_VERSION}", **{k: json.dumps(v) for k, v in (metadata or {}).items()}}
    if shapes:
        meta[SPARSE] = json.dumps(shapes)
    write_atomic(path, save(tensors, metadata=meta))


# --- sparse storage ----------------------------------------------------------------------------------
# An n-gram's table holds V ** (context + 1) counts, almost all zero: a trigram over 320 tokens is 32.8 million
# int64 cells (262 MB), of which a small text fills a few thousand. Such a tensor NAME is stored as NAME#index
# (the flat positions of its non-zero cells, ascending, int64) and NAME#values, its shape in the metadata's
# "sparse" entry; ``load_tensors`` gives it back whole.

SPARSE = "sparse"
SPARSE_FROM = 1 << 16  # cells: a smaller tensor is stored as it is
MAX_UNPACKED = 1 << 30  # bytes one sparse tensor may unpack to (an n-gram's largest table is 400 MB)


def pack_sparse(tensors: dict) -> tuple[dict, dict[str, list[int]]]:
    """``tensors`` with each large integer tensor whose non-zero cells take less than half its bytes replaced by
    its two parts, and {name: shape} of those replaced."""
    import torch

    out, shapes = {}, {}
    for name, v in tensors.items():
        if v.is_floating_point() or v.is_complex() or v.dtype == torch.bool or v.numel() < SPARSE_FROM:
            out[name] = v
            continue
        flat = v.reshape(-1)
        index = flat.nonzero().squeeze(1)
        if 2 * index.numel() * (8 + v.element_size()) >= v.numel() * v.element_size():
            out[name] = v
            continue
        out[f"{name}#index"], out[f"{name}#values"] = index, flat[index]
        shapes[name] = list(v.shape)
    return out, shapes


def _unpack_sparse(path: Path, tensors: dict, shapes: Any) -> dict:
    """The tensors ``pack_sparse`` split, whole again; a malformed entry is refused naming the file."""
    import torch

    def bad(why: str) -> MakemoreError:
        return MakemoreError(f"{path}: damaged sparse tensor ({why})")

    if not isinstance(shapes, dict):
        raise bad("its shapes are not a JSON object")
    for name, shape in shapes.items():
        if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)):
            raise bad(f"{name}: shape {shape!r}")
        index, values = tensors.pop(f"{name}#index", None), tensors.pop(f"{name}#values", None)
        if index is None or values is None:
            raise bad(f"{name}: its index or values are missing")
        if name in tensors:
            raise bad(f"{name}: stored both whole and sparse")
        if index.dtype != torch.int64 or index.dim() != 1 or values.shape != index.shape:
            raise bad(f"{name}: an index of {index.dtype} {tuple(index.shape)} for values {tuple(values.shape)}")
        cells = math.prod(shape)
        if cells * values.element_size() > MAX_UNPACKED:
            raise bad(f"{name}: shape {tuple(shape)} would take more than {MAX_UNPACKED:,} bytes")
        if index.numel() and (int(index[0]) < 0 or int(index[-1]) >= cells or not bool((index.diff() > 0).all())):
            raise bad(f"{name}: positions not ascending within its {cells:,} cells")
        whole = torch.zeros(cells, dtype=values.dtype)
        whole[index] = values
        tensors[name] = whole.view(shape)
    return tensors


def sparse_extra_bytes(header: dict) -> int:
    """From a safetensors header: how many more bytes its sparse tensors take whole than stored (0 where the
    entry is malformed; the load refuses it)."""
    extra = 0
    try:
        shapes = json.loads(header["__metadata__"][SPARSE])
        for name, shape in shapes.items():
            if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)):
                return 0
            extra += math.prod(shape) * DTYPE_BYTES[header[f"{name}#values"]["dtype"]]
    except (KeyError, TypeError, ValueError, AttributeError):
        return 0
    return extra


DTYPE_BYTES = {"I64": 8, "U64": 8, "I32": 4, "U32": 4, "I16": 2, "U16": 2, "I8": 1, "U8": 1}


def load_tensors(path: Path, device: str = "cpu") -> tuple[dict, dict[str, Any]]:
    """Tensors and decoded metadata; a file that is not safetensors (a pickle, say) is refused, never loaded."""
    from safetensors.torch import load

    path = Path(path)
    if not path.exists():
        raise MakemoreError(f"{path}: missing checkpoint")
    if path.suffix in PICKLE_SUFFIXES:
        raise MakemoreError(f"{path}: a {path.suffix} file may hold a pickle, which can run code when loaded; "
                            f"makemore only loads .safetensors checkpoints inside a run directory")
    data = _read_safetensors(path)
    try:
        tensors = load(data)
    except Exception as e:  # the parser's own error types vary by version; any failure means a bad file
        raise MakemoreError(f"{path}: not a valid safetensors file ({e})") from None
    metadata = _decoded_metadata(path, data)
    if SPARSE in metadata:
        tensors = _unpack_sparse(path, tensors, metadata.pop(SPARSE))
    if device != "cpu":
        tensors = {k: v.to(device) for k, v in tensors.items()}
    return tensors, metadata


def load_metadata(path: Path) -> dict[str, Any]:
    """A checkpoint's decoded metadata, from its header alone (checked as ``load_tensors`` checks it)."""
    with open_regular(path, "a safetensors checkpoint") as f:
        head, _ = _declared(path, f)
    meta = _decoded_metadata(path, head)
    meta.pop(SPARSE, None)
    return meta


def _decoded_metadata(path: Path, data: bytes) -> dict[str, Any]:
    try:
        meta_raw = _read_metadata(data)
        return {k: (parse_json(v, path, "checkpoint metadata") if k != "format" else v) for k, v in meta_raw.items()}
    except ValueError as e:
        raise MakemoreError(f"{path}: bad checkpoint metadata ({e})") from None


PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt"}


def looks_like_pickle(data: bytes) -> bool:
    """Pickle protocols 2-5 start with PROTO (0x80) and the protocol number; torch.save writes a zip file.

    A safetensors file (an 8-byte little-endian header length, then the JSON header) whose header is 640, 896,
    1152 or 1408 bytes long (modulo 65536) starts with the same two bytes, so that shape is checked first."""
    if len(data) >= 9 and data[8:9] == b"{" and 8 + int.from_bytes(data[:8], "little") <= len(data):
        return False
    return (len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5) or data[:4] == b"PK\x03\x04"


def tensor_bytes(path: Path) -> int:
    """How many bytes of tensor data the safetensors file ``path`` declares, from its header alone (a sparse
    tensor counted whole as well)."""
    with open_regular(path, "a safetensors checkpoint") as f:
        head, end = _declared(path, f)
    return end + sparse_extra_bytes(json.loads(head[8:]))


def _declared(path: Path, f) -> tuple[bytes, int]:
    """The header (its length prefix included) of the open safetensors file ``f`` and the bytes of tensor data it
    declares, checked against the file's size: a truncated or padded file is refused before its data is read."""
    head, first = f.read(8), f.read(1)
    if first != b"{" and looks_like_pickle(head + first):  # a safetensors header opens with {
        raise MakemoreError(f"{path}: looks like a pickle/torch.save file, which can run code when loaded; "
                            f"makemore only loads safetensors and never unpickles")
    n = int.from_bytes(head, "little") if len(head) == 8 else -1
    if not 2 <= n <= MAX_HEADER:
        raise MakemoreError(f"{path}: not a valid safetensors file (header length {n:,})")
    raw = first + f.read(n - 1)
    if len(raw) != n:
        raise MakemoreError(f"{path}: not a valid safetensors file (truncated header)")
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError):
        header = None
    if not isinstance(header, dict):
        raise MakemoreError(f"{path}: not a valid safetensors file (its header is not a JSON object)")
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)):
            raise MakemoreError(f"{path}: not a valid safetensors file (tensor {name!r} has no data offsets)")
        end = max(end, offsets[1])
    size = os.fstat(f.fileno()).st_size
    if size != 8 + n + end:
        raise MakemoreError(f"{path}: not a valid safetensors file ({size:,} bytes where its header declares "
                            f"{8 + n + end:,}: truncated or damaged)")
    return head + raw, end


def _read_safetensors(path: Path) -> bytes:
    """The whole file, read only once its header has been checked against its size, which is bounded."""
    with open_regular(path, "a safetensors checkpoint") as f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_TENSOR_FILE:
            raise MakemoreError(f"{path}: {size:,} bytes, more than the {MAX_TENSOR_FILE:,} a checkpoint may hold")
        head, end = _declared(path, f)
        try:
            rest = f.read(end)
        except OSError as e:
            raise MakemoreError(f"{path}: cannot read ({e.strerror or e})") from None
    if len(rest) != end:
        raise MakemoreError(f"{path}: changed while being read")
    return head + rest


def _read_metadata(data: bytes) -> dict[str, str]:
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise ValueError("metadata must be an object")
    if not all(isinstance(v, str) for v in meta.values()):
        raise ValueError("metadata values must be strings")
    return meta
