"""Run directories and checkpoints: safetensors for tensors, JSON for everything else; nothing is unpickled.

    RUN/config.json           every hyperparameter, the vocabulary, the dataset (path, sha256), split sizes
    RUN/split.json            the words of each split, so eval and sample agree with training later
    RUN/model.safetensors     weights with the best validation loss
    RUN/last.safetensors      weights at the last save, and
    RUN/last.state.safetensors  the same weights, optimizer moments and RNG states in one file: --resume
                                reads only this (metadata: step, best loss, param groups)
    RUN/metrics.jsonl         one event per line (see makemore.events)
    RUN/samples.txt           samples drawn at each evaluation

Every file is written to a temporary file, fsynced and renamed into place, so a kill never leaves half a file.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from makemore.errors import MakemoreError

FORMAT_VERSION = 1
CONFIG = "config.json"
SPLIT = "split.json"
BEST = "model.safetensors"
LAST = "last.safetensors"
LAST_STATE = "last.state.safetensors"
METRICS = "metrics.jsonl"
SAMPLES = "samples.txt"
LOCK = ".lock"


# --- atomic writes ---------------------------------------------------------------------------------

def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` holds either the old or the new content, never a mix.

    A failure (disk full, read-only directory) leaves the old file untouched and is reported as a
    MakemoreError naming the file.
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
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


def remove_stale_temporaries(run_dir: Path) -> None:
    """Delete temporary files a killed writer left behind (call with the run's lock held)."""
    for tmp in Path(run_dir).glob(".*.tmp"):
        try:
            tmp.unlink()
        except OSError:
            pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MakemoreError(f"{path}: missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MakemoreError(f"{path}: not valid JSON ({e})") from None
    except OSError as e:
        raise MakemoreError(f"{path}: cannot read ({e.strerror or e})") from None


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Every complete line of metrics.jsonl (a torn last line, from a live or killed writer, is skipped)."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            rows.append(obj)
    return rows


# --- tensors -----------------------------------------------------------------------------------------

def save_tensors(path: Path, tensors: dict, metadata: dict[str, Any] | None = None) -> None:
    from safetensors.torch import save

    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = {"format": f"makemore/{FORMAT_VERSION}", **{k: json.dumps(v) for k, v in (metadata or {}).items()}}
    write_atomic(path, save(tensors, metadata=meta))


def load_tensors(path: Path, device: str = "cpu") -> tuple[dict, dict[str, Any]]:
    """Tensors and decoded metadata; a file that is not safetensors (a pickle, say) is refused, never loaded."""
    from safetensors.torch import load

    path = Path(path)
    if not path.is_file():
        raise MakemoreError(f"{path}: missing checkpoint")
    if path.suffix in PICKLE_SUFFIXES:
        raise MakemoreError(f"{path}: a {path.suffix} file may hold a pickle, which can run code when loaded; "
                            f"makemore only loads .safetensors checkpoints inside a run directory")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise MakemoreError(f"{path}: cannot read ({e.strerror or e})") from None
    if looks_like_pickle(data):
        raise MakemoreError(f"{path}: looks like a pickle/torch.save file, which can run code when loaded; "
                            f"makemore only loads safetensors and never unpickles")
    try:
        tensors = load(data)
    except Exception as e:  # the parser's own error types vary by version; any failure means a bad file
        raise MakemoreError(f"{path}: not a valid safetensors file ({e})") from None
    try:
        meta_raw = _read_metadata(data)
        metadata = {k: (json.loads(v) if k != "format" else v) for k, v in meta_raw.items()}
    except (ValueError, json.JSONDecodeError) as e:
        raise MakemoreError(f"{path}: bad checkpoint metadata ({e})") from None
    if device != "cpu":
        tensors = {k: v.to(device) for k, v in tensors.items()}
    return tensors, metadata


PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt"}


def looks_like_pickle(data: bytes) -> bool:
    """Pickle protocols 2-5 start with PROTO (0x80) and the protocol number; torch.save writes a zip file."""
    return (len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5) or data[:4] == b"PK\x03\x04"


def _read_metadata(data: bytes) -> dict[str, str]:
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    meta = header.get("__metadata__") or {}
    if not all(isinstance(v, str) for v in meta.values()):
        raise ValueError("metadata values must be strings")
    return meta


# --- run directories ---------------------------------------------------------------------------------

def new_run_dir(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3``, ... : the first that does not exist, created atomically."""
    base.parent.mkdir(parents=True, exist_ok=True)
    for i in range(1, 10_000):
        candidate = base if i == 1 else base.with_name(f"{base.name}-{i}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise MakemoreError(f"{base}: too many runs with this name")


def staging_dir(out: Path) -> Path:
    """A hidden temporary directory beside ``out`` in which a new run's first files are written."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
        os.chmod(tmp, 0o777 & ~_umask())
    except OSError as e:
        raise MakemoreError(f"{out.parent}: cannot create a run directory here ({e.strerror or e})") from None
    return tmp


def publish_run_dir(staging: Path, out: Path) -> None:
    """Rename a fully written staging directory to ``out`` (absent or empty) in one step.

    A kill before the rename leaves ``out`` as it was, so the same command can simply be run again; a kill
    after it leaves a complete run directory (config.json and split.json) that ``--resume`` can start.
    """
    try:
        os.rename(staging, out)
    except OSError as e:
        shutil.rmtree(staging, ignore_errors=True)
        if e.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise MakemoreError(f"{out}: already exists; continue it with `makemore train --resume {out}` "
                                f"or choose another directory with -o") from None
        raise MakemoreError(f"{out}: cannot create the run directory ({e.strerror or e})") from None
    fsync_dir(Path(out).parent)


def is_run_dir(path: Path) -> bool:
    return (Path(path) / CONFIG).is_file()


def check_run_dir(path: Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise MakemoreError(f"{path}: no such run directory")
    if not path.is_dir():
        try:
            with open(path, "rb") as f:
                head = f.read(4)  # enough to recognise a pickle; the file is never unpickled
        except OSError:
            head = b""
        if path.suffix in PICKLE_SUFFIXES or looks_like_pickle(head):
            raise MakemoreError(f"{path}: a pickle/torch.save file, which can run code when loaded; makemore "
                                f"never unpickles and loads only run directories written by `makemore train`")
        raise MakemoreError(f"{path}: not a directory (expected a run directory written by `makemore train`)")
    if not is_run_dir(path):
        raise MakemoreError(f"{path}: not a makemore run (no {CONFIG})")
    return path


def latest_run(root: Path = Path("runs")) -> Path:
    runs = [p for p in root.glob("*") if not p.name.startswith(".") and is_run_dir(p)] if root.is_dir() else []
    if not runs:
        raise MakemoreError(f"no runs in {root}/; train one first (makemore train names) or name a run directory")

    def last_change(p: Path) -> float:
        return max((f.stat().st_mtime for f in (p / BEST, p / CONFIG) if f.exists()), default=0.0)

    return max(runs, key=last_change)


class RunLock:
    """An exclusive lock on a run directory, held while a process trains into it."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        import fcntl

        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise MakemoreError(f"{self.path.parent}: cannot write to the run directory ({e.strerror or e})") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            raise MakemoreError(f"{self.path.parent}: another makemore process is training into this run") from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()}\n".encode())
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
