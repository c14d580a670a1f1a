"""Files: atomic writing (an interrupted step leaves nothing that looks finished), plain data for
JSON / ``weights_only`` checkpoints, and the check that an output folder can be written."""
from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from nnunet_transfer.errors import NnunetTransferError


def plain_data(obj: Any, nan_as_none: bool = False) -> Any:
    """``obj`` with numpy scalars / arrays as Python numbers / lists, tuples as lists and paths as
    strings, recursively; with ``nan_as_none`` NaN becomes None (strict JSON's null)."""
    if isinstance(obj, dict):
        return {str(k): plain_data(v, nan_as_none) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain_data(v, nan_as_none) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return plain_data(obj.tolist(), nan_as_none)
    if nan_as_none and isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _mode_of_new_file(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file name beside ``path``; when the block succeeds it becomes ``path``
    (``os.replace``), otherwise it is removed and ``path`` is untouched. The file gets the
    permissions a plain ``open(path, "w")`` would give it (the existing file's, else 0666 less the
    umask), not the owner-only mode of a temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise _out_of_space(path) from e
        raise
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _mode_of_new_file(path))
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError) and e.errno == errno.ENOSPC and str(e.filename or tmp) == tmp:
            raise _out_of_space(path) from e
        raise


def _out_of_space(path: Path) -> OSError:
    """A full disk (ENOSPC) as an OSError that names ``path``, the file being written, not its
    temporary twin (or nothing, as a failed ``write`` says)."""
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def write_json_atomic(data: Any, path: str | os.PathLike, indent: int = 2) -> Path:
    """Write ``data`` (made :func:`plain_data`) as JSON to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(plain_data(data), f, indent=indent, sort_keys=False)
        f.write("\n")
    return Path(path)


def write_text_atomic(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_csv_atomic(table: Any, path: str | os.PathLike) -> Path:
    """Write a pandas DataFrame as CSV (no index) to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        table.to_csv(f, index=False)
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file. Raises NnunetTransferError naming the file when it is not JSON (truncated,
    edited by hand, another format)."""
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise NnunetTransferError(f"{path} is not valid JSON ({e}); restore or delete it.") from None


def sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The SHA-256 hex digest of a file's content, read in chunks (checkpoints are large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def require_writable_folder(folder: str | os.PathLike, what: str) -> Path:
    """``folder`` made if needed, after checking it can hold new files.

    Raises NnunetTransferError naming ``what`` (the option) and the path when it is a file, lies
    below a file, or cannot be written (permissions, a read-only file system).
    """
    folder = Path(folder)
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise NnunetTransferError(f"{what} {folder}: {existing} is a file, not a folder; choose a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise NnunetTransferError(f"{what} {folder} cannot be written ({os.strerror(e.errno or errno.EACCES)}); "
                                  f"choose a folder you can write to") from None
    return folder


@contextmanager
def atomic_directory(final: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder that becomes ``final`` only when the block succeeds.

    On an exception the temporary folder is removed and ``final`` is untouched. With
    ``overwrite=True`` an existing ``final`` is replaced (moved aside, then deleted) only after
    the new content is complete. Raises ``FileExistsError`` if ``final`` exists and
    ``overwrite`` is False.
    """
    final = Path(final)
    if final.exists() and not overwrite:
        raise FileExistsError(str(final))
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.chmod(tmp, 0o777 & ~_umask())  # a plain mkdir's mode, not a temporary folder's owner-only one
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old.{os.getpid()}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
