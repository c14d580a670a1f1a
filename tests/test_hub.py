"""Checkpoints by hub id or URL, against a local server that answers as the hub does (no internet).

The server speaks the part of the hub's HTTP API that huggingface_hub uses to fetch one file: the
model info at a revision (``/api/models/OWNER/REPO/revision/REV``: commit and file list) and
``/OWNER/REPO/resolve/REV/FILE`` (HEAD and GET, with ``X-Repo-Commit``, ``ETag``,
``Content-Length``; errors as ``X-Error-Code``). ``HF_ENDPOINT`` points to it.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.hub import HubReference, hub_cache_dir, is_hub_reference, parse_hub_reference, resolve_checkpoint

COMMIT = "a" * 40
NEW_COMMIT = "b" * 40


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        self._answer(body=True)

    def do_HEAD(self):
        self._answer(body=False)

    def _send(self, status: int, headers: dict, data: bytes, body: bool) -> None:
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(data))}.items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _error(self, code: str, body: bool, commit: str | None = None) -> None:
        headers = {"X-Error-Code": code, "Content-Type": "application/json"}
        if commit:
            headers["X-Repo-Commit"] = commit
        self._send(404, headers, json.dumps({"error": code}).encode(), body)

    def _answer(self, body: bool) -> None:
        hub = self.server.hub
        path = urlsplit(self.path).path
        hub.requests.append((self.command, path))
        if path.startswith("/api/models/"):
            repo_id, _, revision = path[len("/api/models/"):].partition("/revision/")
            revision, filename = unquote(revision) or "main", None
        else:
            parts = path.strip("/").split("/")
            if len(parts) < 5 or parts[2] != "resolve":
                return self._send(400, {}, b"", body)
            repo_id, revision, filename = "/".join(parts[:2]), unquote(parts[3]), "/".join(parts[4:])
        repo = hub.repos.get(repo_id)
        if repo is None:
            return self._error("RepoNotFound", body)
        commit = repo["refs"].get(revision, revision if revision in repo["commits"] else None)
        if commit is None:
            return self._error("RevisionNotFound", body)
        files = repo["commits"][commit]
        if filename is None:
            info = {"id": repo_id, "modelId": repo_id, "sha": commit, "private": False, "downloads": 0, "likes": 0,
                    "tags": [], "siblings": [{"rfilename": f} for f in files]}
            return self._send(200, {"Content-Type": "application/json"}, json.dumps(info).encode(), body)
        if filename not in files:
            return self._error("EntryNotFound", body, commit)
        data = files[filename]
        self._send(200, {"X-Repo-Commit": commit, "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                         "Content-Type": "application/octet-stream"}, data, body)


class LocalHub:
    """A hub on 127.0.0.1: ``repos[repo_id] = {"refs": {branch: commit}, "commits": {commit: {file: bytes}}}``."""

    def __init__(self):
        self.repos: dict = {}
        self.requests: list = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.hub = self
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add(self, repo_id: str, files: dict[str, bytes], commit: str = COMMIT, branch: str = "main") -> None:
        repo = self.repos.setdefault(repo_id, {"refs": {}, "commits": {}})
        repo["refs"][branch] = commit
        repo["commits"][commit] = files

    def stop(self) -> None:
        """Nothing listens on the port any more: connections are refused."""
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()
            self.thread.join()


@pytest.fixture
def hub(tmp_path, monkeypatch):
    server = LocalHub()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("NNUNET_TRANSFER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    yield server
    server.stop()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------- parsing

@pytest.mark.parametrize("text, expected", [
    ("hf://owner/repo", HubReference("owner/repo")),
    ("hf://owner/repo@v1.0", HubReference("owner/repo", "v1.0")),
    ("hf://owner/repo:model.pth", HubReference("owner/repo", None, "model.pth")),
    (f"hf://owner/repo@{COMMIT}:sub/model.pth", HubReference("owner/repo", COMMIT, "sub/model.pth")),
    ("https://huggingface.co/AnonRes/ResEncL-OpenMind-MAE", HubReference("AnonRes/ResEncL-OpenMind-MAE")),
    ("https://huggingface.co/owner/repo/tree/refs%2Fpr%2F1", HubReference("owner/repo", "refs/pr/1")),
    ("https://huggingface.co/owner/repo/blob/main/a/b.pth", HubReference("owner/repo", "main", "a/b.pth")),
    ("https://hf.co/owner/repo/resolve/v2/m.pt?download=true", HubReference("owner/repo", "v2", "m.pt")),
])
def test_references_parse(text, expected):
    assert is_hub_reference(text) and parse_hub_reference(text) == expected


@pytest.mark.parametrize("text, why", [
    ("hf://repo-without-owner", "a model repository is OWNER/NAME"),
    ("hf://owner/repo@", "empty revision"),
    ("hf://owner/repo:", "empty file name"),
    ("hf://owner/repo:../x.pth", "a path inside the repository"),
    ("https://example.org/model.pth", "not on huggingface.co"),
    ("https://huggingface.co/datasets/owner/repo", "names a dataset"),
    ("https://huggingface.co/owner/repo/commits/main", "is not a repository, tree/REVISION"),
])
def test_a_malformed_reference_is_one_error_with_the_forms(text, why):
    with pytest.raises(NnunetTransferError, match=why) as error:
        resolve_checkpoint(text)
    assert text in str(error.value) and "hf://OWNER/REPO[@REVISION][:FILE]" in str(error.value)


def test_local_paths_pass_through_hashed(tmp_path, monkeypatch):
    path = tmp_path / "model.pth"
    path.write_bytes(b"weights")
    resolved = resolve_checkpoint(path)
    assert (resolved.path, resolved.sha256, resolved.pinned, resolved.is_hub) == (path, _sha(b"weights"), None, False)
    assert not is_hub_reference(path) and not is_hub_reference(str(path))
    with pytest.raises(NnunetTransferError, match="does not exist"):
        resolve_checkpoint(tmp_path / "missing.pth")
    monkeypatch.delenv("NNUNET_TRANSFER_HOME", raising=False)
    assert hub_cache_dir() is None  # huggingface_hub's own cache
    monkeypatch.setenv("NNUNET_TRANSFER_HOME", str(tmp_path))
    assert hub_cache_dir() == tmp_path / "hub"


# ---------------------------------------------------------------------------------------- fetching

def test_a_named_file_is_fetched_once_then_served_offline_from_the_cache(hub, tmp_path, monkeypatch):
    hub.add("owner/repo", {"model.pth": b"weights v1", "other.pth": b"other"})
    first = resolve_checkpoint("hf://owner/repo:model.pth")
    assert first.path.read_bytes() == b"weights v1" and first.sha256 == _sha(b"weights v1")
    assert first.path.is_relative_to(tmp_path / "home" / "hub")
    assert (first.repo_id, first.revision, first.filename) == ("owner/repo", COMMIT, "model.pth")
    assert first.pinned == f"hf://owner/repo@{COMMIT}:model.pth"
    assert not list((tmp_path / "home" / "hub").rglob("*.incomplete"))

    hub.stop()  # offline: connection refused, the cached commit of main is used
    again = resolve_checkpoint("hf://owner/repo:model.pth")
    assert (again.path, again.sha256, again.revision) == (first.path, first.sha256, COMMIT)
    assert resolve_checkpoint(first.pinned) == resolve_checkpoint(first.pinned)
    assert resolve_checkpoint(first.pinned).path == first.path


def test_a_pinned_commit_in_the_cache_asks_no_network_and_offline_mode_neither(hub, monkeypatch):
    hub.add("owner/repo", {"model.pth": b"weights"})
    pinned = resolve_checkpoint("hf://owner/repo").pinned
    before = len(hub.requests)
    assert resolve_checkpoint(pinned).sha256 == _sha(b"weights")
    assert len(hub.requests) == before  # the server runs, and was not asked
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_checkpoint("hf://owner/repo").revision == COMMIT
    assert len(hub.requests) == before
    with pytest.raises(NnunetTransferError, match="HF_HUB_OFFLINE is set.*not in the cache"):
        resolve_checkpoint("hf://owner/repo:never_fetched.pth")


def test_a_branch_is_followed_while_online_and_a_pinned_commit_is_not(hub):
    hub.add("owner/repo", {"model.pth": b"old"})
    old = resolve_checkpoint("hf://owner/repo")
    hub.add("owner/repo", {"model.pth": b"new"}, commit=NEW_COMMIT)  # main moves on
    new = resolve_checkpoint("hf://owner/repo")
    assert (new.revision, new.sha256) == (NEW_COMMIT, _sha(b"new"))
    assert resolve_checkpoint(old.pinned).sha256 == _sha(b"old")


@pytest.mark.parametrize("reference", ["https://huggingface.co/owner/repo", "hf://owner/repo@main",
                                       "https://huggingface.co/owner/repo/blob/main/nested/model.pth"])
def test_a_repository_without_a_file_name_gives_its_single_checkpoint(hub, reference):
    hub.add("owner/repo", {"README.md": b"# model", "config.json": b"{}", "nested/model.pth": b"weights"})
    resolved = resolve_checkpoint(reference)
    assert (resolved.filename, resolved.sha256) == ("nested/model.pth", _sha(b"weights"))
    assert resolved.reference == reference and resolved.pinned == f"hf://owner/repo@{COMMIT}:nested/model.pth"


@pytest.mark.parametrize("files, listed", [
    ({"a.pth": b"1", "b.ckpt": b"2"}, "2 checkpoint files \\(a.pth, b.ckpt\\)"),
    ({"README.md": b"x"}, "no checkpoint file .* \\(README.md\\)"),
])
def test_none_or_several_checkpoint_files_ask_for_a_name(hub, files, listed):
    hub.add("owner/repo", files)
    with pytest.raises(NnunetTransferError, match=f"hf://owner/repo: owner/repo at main holds {listed}; name one "
                                                  f"with ':FILE'"):
        resolve_checkpoint("hf://owner/repo")


@pytest.mark.parametrize("reference, message", [
    ("hf://nobody/nothing:model.pth", "has no model repository nobody/nothing"),
    ("hf://owner/repo@v9:model.pth", "owner/repo has no revision 'v9'"),
    ("hf://owner/repo:missing.pth", "has no file 'missing.pth'; its checkpoint files: model.pth"),
])
def test_an_unknown_repository_revision_or_file_is_one_clear_error(hub, reference, message):
    hub.add("owner/repo", {"model.pth": b"weights"})
    with pytest.raises(NnunetTransferError, match=message) as error:
        resolve_checkpoint(reference)
    assert reference in str(error.value) and (error.value.__context__ is None or error.value.__suppress_context__)


def test_no_hub_and_nothing_cached_is_one_clear_error_at_once(hub):
    hub.stop()
    start = time.monotonic()
    with pytest.raises(NnunetTransferError, match="cannot be reached .* not in the cache .* works offline "
                                                  "afterwards") as error:
        resolve_checkpoint("hf://owner/repo:model.pth")
    assert time.monotonic() - start < 5  # no retrying for tens of seconds
    assert "hf://owner/repo:model.pth" in str(error.value) and error.value.__suppress_context__


def test_a_cached_file_changed_on_disk_is_refused(hub):
    hub.add("owner/repo", {"model.pth": b"weights"})
    resolved = resolve_checkpoint("hf://owner/repo:model.pth")
    blob = resolved.path.resolve()
    blob.chmod(0o644)
    blob.write_bytes(b"tampered")
    with pytest.raises(NnunetTransferError, match="does not have the SHA-256 the hub gave it"):
        resolve_checkpoint(resolved.pinned)


# ---------------------------------------------------------------------------------------- the study

STUDY = """
name = "s"
[[sources]]
checkpoint = "{reference}"
task = "MAE"
label = "hub mae"
[[targets]]
dataset = 3
"""


def _study(tmp_path, reference):
    from nnunet_transfer.study.spec import load_study
    path = tmp_path / "study.toml"
    path.write_text(STUDY.format(reference=reference))
    return load_study(path)


def test_a_study_source_on_the_hub_is_fetched_at_the_start_recorded_and_pinned(hub, tmp_path):
    from nnunet_transfer.study.sources import check_external_source, record_external_sources, sources_markdown
    from nnunet_transfer.study.steps import checkpoint_path
    from tests.study.test_sources import _checkpoint
    data = _checkpoint(tmp_path / "upload" / "openmind.pth").read_bytes()
    hub.add("owner/openmind", {"openmind.pth": data})
    study = _study(tmp_path, "hf://owner/openmind")
    source = study.sources[0]
    assert source.checkpoint == "hf://owner/openmind" and not hub.requests  # loading the study fetches nothing
    entry = record_external_sources(study)[source.key]
    assert {k: entry[k] for k in ("reference", "revision", "sha256", "pinned")} == {
        "reference": "hf://owner/openmind", "revision": COMMIT, "sha256": _sha(data),
        "pinned": f"hf://owner/openmind@{COMMIT}:openmind.pth"}
    assert Path(entry["checkpoint"]).read_bytes() == data and entry["format"] == "nnssl"
    resolved = checkpoint_path(study, source)  # what the fine-tuning step attaches: the recorded file
    assert (str(resolved.path), resolved.pinned, resolved.sha256) == (entry["checkpoint"], entry["pinned"],
                                                                      entry["sha256"])
    assert f"hf://owner/openmind@{COMMIT}:openmind.pth" in sources_markdown(study)

    hub.add("owner/openmind", {"openmind.pth": b"moved on"}, commit=NEW_COMMIT)  # main moves: the study does not
    assert record_external_sources(study)[source.key]["revision"] == COMMIT
    hub.stop()
    check_external_source(study, source)  # offline: the recorded file
    Path(entry["checkpoint"]).unlink()  # the cache was cleared, and the hub is unreachable
    with pytest.raises(NnunetTransferError, match="cannot be reached"):
        record_external_sources(study)
    with pytest.raises(NnunetTransferError, match="is not the one the study started with"):
        record_external_sources(_study(tmp_path, "hf://owner/openmind@v2"))


def test_a_malformed_hub_reference_in_a_study_names_its_key(tmp_path):
    with pytest.raises(NnunetTransferError, match="'sources\\[0\\].checkpoint' Checkpoint reference 'hf://x@'"):
        _study(tmp_path, "hf://x@")


# ---------------------------------------------------------------------------------------- the CLI

def test_preview_and_attach_by_hub_id_record_sha256_and_origin(hub, planned_tiny, tmp_path):
    """``nnunet_transfer preview`` / ``attach`` in a subprocess, as a user runs them."""
    import torch

    from nnunet_transfer.planning.plans_file import load_plans
    from nnunet_transfer.planning.preview import build_target_network
    from tests.conftest import use_folders
    with pytest.MonkeyPatch.context() as mp:
        use_folders(mp, planned_tiny)
        network = build_target_network("Dataset911_DemoStroke", load_plans("Dataset911_DemoStroke", "TinyPlans"), "2d")
    upload = tmp_path / "upload.pth"
    torch.save({"network_weights": network.state_dict()}, upload)
    data = upload.read_bytes()
    hub.add("owner/tiny", {"model.pth": data, "README.md": b"tiny"})
    env = {**os.environ, **{k: str(v) for k, v in planned_tiny.items()}}
    report = tmp_path / "report.json"
    cli = [sys.executable, "-m", "nnunet_transfer.cli"]
    done = subprocess.run([*cli, "preview", "hf://owner/tiny:model.pth", "-d", "911", "-p", "TinyPlans", "-c", "2d",
                           "--json", str(report)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    pinned = f"hf://owner/tiny@{COMMIT}:model.pth"
    saved = json.loads(report.read_text())
    assert (saved["checkpoint_sha256"], saved["checkpoint_origin"]) == (_sha(data), pinned)
    assert pinned in done.stdout

    hub.stop()  # attach works offline from the cache
    done = subprocess.run([*cli, "attach", "https://huggingface.co/owner/tiny", "-d", "911", "-p", "TinyPlans",
                           "-o", "TinyPlans_hub"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    block = json.loads((planned_tiny["nnUNet_preprocessed"] / "Dataset911_DemoStroke" / "TinyPlans_hub.json")
                       .read_text())["transfer"]
    assert (block["checkpoint_sha256"], block["checkpoint_origin"]) == (_sha(data), pinned)
    assert Path(block["checkpoint"]).read_bytes() == data
    assert Path(block["checkpoint"]).is_relative_to(tmp_path / "home" / "hub")

    done = subprocess.run([*cli, "attach", "hf://owner/absent", "-d", "911", "-p", "TinyPlans"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("nnunet_transfer attach: error: Checkpoint hf://owner/absent: the hub")


def test_the_fine_tuning_trainer_reports_the_blocks_sha256_and_origin(tmp_path):
    """``load_transfer_checkpoint`` copies the transfer block's provenance into transfer_report.json."""
    from types import SimpleNamespace

    import torch

    from nnunet_transfer.plans_blocks import make_transfer_block
    from nnunet_transfer.trainers.finetune import REPORT_FILE, nnUNetTrainerFinetune
    from nnunet_transfer.transfer.rules import TransferRules
    from tests.conftest import tiny_unet
    checkpoint = tmp_path / "model.pth"
    torch.save({"network_weights": tiny_unet().state_dict()}, checkpoint)
    origin = f"hf://owner/repo@{COMMIT}:model.pth"
    block = make_transfer_block(str(checkpoint), TransferRules(), checkpoint_sha256="f" * 64, checkpoint_origin=origin)
    trainer = SimpleNamespace(transfer_block=lambda: block, network=tiny_unet(), configuration_name="3d_fullres",
                              plans_manager=SimpleNamespace(dataset_name="Dataset001_X"), dataset_json=None,
                              configuration_manager=SimpleNamespace(spacing=[1, 1, 1]), local_rank=0,
                              output_folder=str(tmp_path), print_to_log_file=lambda *a: None)
    report = nnUNetTrainerFinetune.load_transfer_checkpoint(trainer)
    saved = json.loads((tmp_path / REPORT_FILE).read_text())
    assert (saved["checkpoint_sha256"], saved["checkpoint_origin"]) == ("f" * 64, origin)
    assert origin in report.summary()
