"""Checkpoints named by a Hugging Face hub id or URL, fetched once into a cache and pinned by commit.

Wherever a checkpoint file is accepted (``attach``, ``preview``, ``plan-like-checkpoint``, a study's
``[[sources]] checkpoint``), a reference to a model repository on the hub is accepted too:

- ``hf://OWNER/REPO[@REVISION][:FILE]``, e.g. ``hf://AnonRes/ResEncL-OpenMind-MAE`` or
  ``hf://owner/repo@3f1c...e9:checkpoints/model_final.pth``;
- ``https://huggingface.co/OWNER/REPO``, ``.../tree/REVISION``, ``.../blob/REVISION/FILE`` or
  ``.../resolve/REVISION/FILE`` (``hf.co`` as well).

Without ``FILE`` the repository must hold exactly one checkpoint-like file (``*.pth``, ``*.pt``,
``*.ckpt``, ``*.bin``). Files are fetched through ``huggingface_hub`` into
``$NNUNET_TRANSFER_HOME/hub`` (else huggingface_hub's own cache, ``$HF_HUB_CACHE``), which downloads
to a temporary ``.incomplete`` file and renames it, so a cut download never leaves a file where the
checkpoint is expected. ``HF_ENDPOINT`` (a mirror) and ``HF_TOKEN`` (gated / private repositories)
are honoured.

When the network is asked:

- a revision that is a full commit hash is immutable: once cached it is served from the cache with
  no network call at all;
- a branch or tag (no ``@REVISION`` means ``main``) follows the branch, as ``huggingface_hub`` does:
  the hub is asked which commit it points to now (the file is downloaded only when that commit's file
  is not cached); when the hub cannot be reached, or ``HF_HUB_OFFLINE=1``, the commit cached last for
  that branch is used (with a warning).

The result, :class:`ResolvedCheckpoint`, names the local file, its SHA-256 and the commit it came
from; ``attach`` and the study record the ``pinned`` form ``hf://OWNER/REPO@COMMIT:FILE``, so
trainings read the local file and later runs never follow a moved branch.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import sha256 as file_sha256

logger = logging.getLogger(__name__)

HUB_SCHEME = "hf://"
HUB_HOSTS = ("huggingface.co", "www.huggingface.co", "hf.co")
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")
DEFAULT_REVISION = "main"
FORMS = ("hf://OWNER/REPO[@REVISION][:FILE] or https://huggingface.co/OWNER/REPO[/blob/REVISION/FILE]")
COMMIT = re.compile(r"[0-9a-f]{40}")
REPO_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?")  # the hub's own rule for names, simplified
SHA256_NAME = re.compile(r"[0-9a-f]{64}")
NETWORK_LIBRARIES = ("httpx", "httpx2", "requests", "urllib3", "socket", "ssl")  # their errors: no answer came


@dataclass(frozen=True)
class HubReference:
    """A parsed reference: ``repo_id`` (``owner/name``), ``revision`` (None: ``main``) and
    ``filename`` inside the repository (None: its single checkpoint file)."""

    repo_id: str
    revision: str | None = None
    filename: str | None = None


@dataclass(frozen=True)
class ResolvedCheckpoint:
    """A checkpoint ready to load: the local ``path``, the ``reference`` as the user gave it and the
    file's ``sha256``; for a hub reference also ``repo_id``, ``revision`` (the commit hash it resolved
    to) and ``filename``. A local path has ``repo_id`` None and ``pinned`` None."""

    path: Path
    reference: str
    sha256: str
    repo_id: str | None = None
    revision: str | None = None
    filename: str | None = None

    @property
    def is_hub(self) -> bool:
        return self.repo_id is not None

    @property
    def pinned(self) -> str | None:
        """``hf://OWNER/REPO@COMMIT:FILE``: the reference that always names this very file."""
        return f"{HUB_SCHEME}{self.repo_id}@{self.revision}:{self.filename}" if self.is_hub else None


def is_hub_reference(text: str | os.PathLike) -> bool:
    """True for a string that names a checkpoint on the hub (``hf://...``) or by URL (``http(s)://...``),
    malformed ones included (:func:`parse_hub_reference` says what is wrong); False for a local path
    (a ``Path`` always is one)."""
    return isinstance(text, str) and text.strip().lower().startswith((HUB_SCHEME, "https://", "http://"))


def _malformed(text: str, why: str) -> NnunetTransferError:
    return NnunetTransferError(f"Checkpoint reference {text!r} {why}. Write {FORMS}.")


def _check_filename(text: str, filename: str) -> str:
    parts = filename.split("/")
    if filename.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise _malformed(text, f"names the file {filename!r}; give a path inside the repository, like "
                               f"'model.pth' or 'checkpoints/model.pth'")
    return filename


def _check_repo(text: str, repo_id: str) -> str:
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(REPO_PART.fullmatch(p) and len(p) <= 96 for p in parts):
        raise _malformed(text, f"has the repository {repo_id!r}; a model repository is OWNER/NAME (letters, "
                               f"digits, '-', '_', '.')")
    return repo_id


def parse_hub_reference(text: str) -> HubReference:
    """Parse ``hf://OWNER/REPO[@REVISION][:FILE]`` or a huggingface.co URL of a model repository
    (``OWNER/REPO``, ``/tree/REV``, ``/blob/REV/FILE``, ``/resolve/REV/FILE``; a revision with
    ``/`` is URL-encoded there, as the hub writes it). Raises NnunetTransferError naming the
    reference and the accepted forms for anything else (another host, a dataset or space, an
    empty revision or file, ``..`` in the file)."""
    text = text.strip()
    if text.lower().startswith(HUB_SCHEME):
        rest = text[len(HUB_SCHEME):]
        repo_part, colon, filename = rest.partition(":")
        repo_id, at, revision = repo_part.partition("@")
        if at and not revision:
            raise _malformed(text, "has an empty revision after '@'")
        if colon and not filename:
            raise _malformed(text, "has an empty file name after ':'")
        return HubReference(_check_repo(text, repo_id), revision or None,
                            _check_filename(text, filename) if filename else None)
    url = urlsplit(text)
    if url.scheme not in ("http", "https") or (url.hostname or "").lower() not in HUB_HOSTS:
        raise _malformed(text, "is not on huggingface.co; download other URLs yourself and give the file's path")
    parts = [p for p in url.path.split("/") if p]
    if parts and parts[0] in ("datasets", "spaces", "buckets"):
        raise _malformed(text, f"names a {parts[0][:-1]}, not a model repository")
    if len(parts) < 2:
        raise _malformed(text, "names no repository")
    repo_id = _check_repo(text, "/".join(parts[:2]))
    if len(parts) == 2:
        return HubReference(repo_id)
    kind, rest = parts[2], [unquote(p) for p in parts[3:]]
    if kind == "tree" and len(rest) == 1:
        return HubReference(repo_id, rest[0])
    if kind in ("blob", "resolve") and len(rest) >= 2:
        return HubReference(repo_id, rest[0], _check_filename(text, "/".join(rest[1:])))
    raise _malformed(text, "is not a repository, tree/REVISION, blob/REVISION/FILE or resolve/REVISION/FILE URL")


def hub_cache_dir() -> Path | None:
    """``$NNUNET_TRANSFER_HOME/hub`` when NNUNET_TRANSFER_HOME is set, else None (huggingface_hub's
    own cache, ``$HF_HUB_CACHE``)."""
    home = os.environ.get("NNUNET_TRANSFER_HOME")
    return Path(home).absolute() / "hub" if home else None


def _offline() -> bool:
    from huggingface_hub import constants
    flag = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return flag.strip().upper() in ("1", "ON", "YES", "TRUE") or bool(getattr(constants, "HF_HUB_OFFLINE", False))


def _endpoint() -> str:
    """HF_ENDPOINT read now, not when huggingface_hub was imported."""
    from huggingface_hub import constants
    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def _checkpoint_files(files: list[str]) -> list[str]:
    return sorted(f for f in files if f.lower().endswith(CHECKPOINT_SUFFIXES))


def _choose_file(text: str, repo_id: str, revision: str, files: list[str]) -> str:
    """The single checkpoint-like file of a listing; NnunetTransferError listing the files otherwise."""
    candidates = _checkpoint_files(files)
    if len(candidates) == 1:
        return candidates[0]
    shown = candidates or sorted(files)
    listing = ", ".join(shown[:20]) + (f", ... ({len(shown) - 20} more)" if len(shown) > 20 else "")
    what = (f"{len(candidates)} checkpoint files ({listing})" if candidates else
            f"no checkpoint file ({', '.join(CHECKPOINT_SUFFIXES)}) among its files ({listing or 'none'})")
    example = f"hf://{repo_id}@{revision}:FILE" if revision != DEFAULT_REVISION else f"hf://{repo_id}:FILE"
    raise NnunetTransferError(f"Checkpoint {text}: {repo_id} at {revision} holds {what}; name one with "
                              f"':FILE', e.g. {example}.")


def _snapshot_commit(path: str, filename: str) -> str:
    """The commit of a cached file: ``.../snapshots/<commit>/<filename>``."""
    return Path(path).parts[-len(filename.split("/")) - 1]


def _from_cache(text: str, ref: HubReference, cache_dir: Path | None) -> tuple[str, str] | None:
    """``(local path, filename)`` of the reference's file in the cache, or None when it is not there.
    Without a file name: the single checkpoint file of the cached snapshot of that revision."""
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.file_download import repo_folder_name
    revision = ref.revision or DEFAULT_REVISION
    filename = ref.filename
    if filename is None:
        storage = Path(cache_dir or constants.HF_HUB_CACHE) / repo_folder_name(repo_id=ref.repo_id, repo_type="model")
        commit = revision if COMMIT.fullmatch(revision) else None
        if commit is None and (storage / "refs" / revision).is_file():
            commit = (storage / "refs" / revision).read_text().strip()
        snapshot = storage / "snapshots" / (commit or "-")
        if commit is None or not snapshot.is_dir():
            return None
        cached = [p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()]
        if not _checkpoint_files(cached):
            return None
        filename = _choose_file(text, ref.repo_id, revision, cached)
    try:
        path = hf_hub_download(ref.repo_id, filename, revision=revision, cache_dir=cache_dir,
                               local_files_only=True)
    except Exception as e:  # noqa: BLE001 - not cached: LocalEntryNotFoundError / EntryNotFoundError by version
        logger.debug("%s not in the cache: %s", text, e)
        return None
    return path, filename


def _hub_error(text: str, ref: HubReference, error: Exception) -> NnunetTransferError:
    """One message for an answer of the hub that is an error (never a traceback of httpx / requests)."""
    from huggingface_hub.utils import EntryNotFoundError, GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError
    revision = ref.revision or DEFAULT_REVISION
    if isinstance(error, GatedRepoError):
        return NnunetTransferError(f"Checkpoint {text}: {ref.repo_id} is gated; accept its conditions on "
                                   f"https://huggingface.co/{ref.repo_id} and log in (hf auth login) or set HF_TOKEN.")
    if isinstance(error, RepositoryNotFoundError):
        return NnunetTransferError(f"Checkpoint {text}: the hub ({_endpoint()}) has no model repository "
                                   f"{ref.repo_id}, or it is private and no token with access is set (log in with "
                                   f"'hf auth login' or set HF_TOKEN). Check the owner and name.")
    if isinstance(error, RevisionNotFoundError):
        return NnunetTransferError(f"Checkpoint {text}: {ref.repo_id} has no revision {revision!r}; give a branch, "
                                   f"tag or commit hash that exists (see "
                                   f"https://huggingface.co/{ref.repo_id}/commits).")
    if isinstance(error, EntryNotFoundError):
        return NnunetTransferError(f"Checkpoint {text}: {ref.repo_id} at {revision} has no file "
                                   f"{ref.filename!r}; check the name (files: https://huggingface.co/{ref.repo_id}"
                                   f"/tree/{revision}).")
    status = getattr(getattr(error, "response", None), "status_code", "?")  # any other HfHubHTTPError
    return NnunetTransferError(f"Checkpoint {text}: the hub ({_endpoint()}) answered HTTP {status} for "
                               f"{ref.repo_id}; try again later.")


def _unreachable(text: str, ref: HubReference, cache_dir: Path | None, reason: str) -> NnunetTransferError:
    from huggingface_hub import constants
    return NnunetTransferError(
        f"Checkpoint {text}: the hub ({_endpoint()}) cannot be reached ({reason}) and the file is not in the cache "
        f"({cache_dir or constants.HF_HUB_CACHE}). Fetch it once with a network connection (it is cached and "
        f"works offline afterwards), or download the file yourself and give its path.")


def _short(error: Exception) -> str:
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0][:200]}" if message else type(error).__name__


def _no_answer(error: Exception) -> bool:
    """True for an error of the connection (refused, DNS, proxy, timeout, offline mode), whose types
    differ between huggingface_hub versions (requests, httpx); False for anything else."""
    return isinstance(error, OSError) or any(c.__module__.split(".")[0] in NETWORK_LIBRARIES
                                             for c in type(error).__mro__)


def _fetch(text: str, ref: HubReference, cache_dir: Path | None) -> tuple[str, str]:
    """``(local path, filename)``: cache first for a commit hash or offline, else ask the hub."""
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.utils import HfHubHTTPError
    revision = ref.revision or DEFAULT_REVISION
    offline = _offline()
    if offline or COMMIT.fullmatch(revision):
        cached = _from_cache(text, ref, cache_dir)
        if cached is not None:
            return cached
        if offline:
            raise _unreachable(text, ref, cache_dir, "HF_HUB_OFFLINE is set")
    try:
        # one request that says whether the hub answers, which commit the revision is and its files;
        # hf_hub_download alone would retry an unreachable hub for ~20 s before failing
        info = HfApi(endpoint=_endpoint()).model_info(ref.repo_id, revision=revision)
    except HfHubHTTPError as e:
        raise _hub_error(text, ref, e) from None
    except Exception as e:  # noqa: BLE001 - sorted below: no answer, or an answer that is not the hub's
        if not _no_answer(e):
            raise NnunetTransferError(f"Checkpoint {text}: the answer of {_endpoint()} is not one of a Hugging Face "
                                      f"hub ({_short(e)}); check HF_ENDPOINT.") from None
        cached = _from_cache(text, ref, cache_dir)
        if cached is None:
            raise _unreachable(text, ref, cache_dir, _short(e)) from None
        logger.warning("The hub (%s) cannot be reached (%s): using the cached commit %s of %s.", _endpoint(),
                       _short(e), _snapshot_commit(*cached), text)
        return cached
    files = [s.rfilename for s in info.siblings or []]
    filename = ref.filename or _choose_file(text, ref.repo_id, revision, files)
    if files and filename not in files:
        candidates = _checkpoint_files(files)
        raise NnunetTransferError(f"Checkpoint {text}: {ref.repo_id} at {revision} has no file {filename!r}; its "
                                  f"checkpoint files: {', '.join(candidates) or 'none'}.")
    try:  # the branch itself (not info.sha): the cache then knows the branch's commit for offline use
        path = hf_hub_download(ref.repo_id, filename, revision=revision, cache_dir=cache_dir, endpoint=_endpoint())
    except HfHubHTTPError as e:
        raise _hub_error(text, HubReference(ref.repo_id, ref.revision, filename), e) from None
    except Exception as e:  # noqa: BLE001 - the connection broke during the download
        if isinstance(e, NnunetTransferError):
            raise
        raise NnunetTransferError(f"Checkpoint {text}: downloading {filename} from {ref.repo_id} failed "
                                  f"({_short(e)}); nothing was kept, run the command again.") from None
    return path, filename


def resolve_checkpoint(reference: str | os.PathLike) -> ResolvedCheckpoint:
    """The local checkpoint file of ``reference``: a local path as it is (hashed), or a hub reference
    fetched into the cache (see the module docstring for when the network is asked).

    Raises NnunetTransferError for a missing local file, a malformed reference, an unknown
    repository / revision / file, a repository with no or several checkpoint files and no ``:FILE``,
    a hub that cannot be reached when the file is not cached, and a cached file whose content no
    longer matches the hash the hub gave it.
    """
    if not is_hub_reference(reference):
        path = Path(reference)
        if not path.is_file():
            raise NnunetTransferError(f"Checkpoint {path} does not exist.")
        return ResolvedCheckpoint(path, str(reference), file_sha256(path))
    text = str(reference).strip()
    ref = parse_hub_reference(text)
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        raise NnunetTransferError(f"Checkpoint {text} is on the hub, which needs huggingface_hub: "
                                  f"pip install 'huggingface_hub>=0.23'.") from None
    cache_dir = hub_cache_dir()
    path, filename = _fetch(text, ref, cache_dir)
    digest = file_sha256(path)
    blob = Path(path).resolve().name  # the cache stores a large (LFS) file under its SHA-256
    if SHA256_NAME.fullmatch(blob) and blob != digest:
        raise NnunetTransferError(f"Checkpoint {text}: the cached file {path} does not have the SHA-256 the hub "
                                  f"gave it (it changed on disk); delete {Path(path).resolve()} and run again.")
    return ResolvedCheckpoint(Path(path), text, digest, ref.repo_id, _snapshot_commit(path, filename), filename)
