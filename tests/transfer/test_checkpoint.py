import os

import numpy as np
import pytest
import torch

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.transfer.checkpoint import (METADATA_KEY, UnsafeCheckpointError, checkpoint_metadata,
                                                 extract_state_dict, load_checkpoint, strip_wrapper_prefixes)


class _RunsCode:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_nnunet_style_checkpoint_with_numpy_log_loads(tmp_path):
    path = tmp_path / "ckpt.pth"
    torch.save({"network_weights": {"a.weight": torch.ones(2)}, "logging": {"loss": [np.float64(0.5), np.float32(1)]},
                "init_args": {"device": torch.device("cpu"), "fold": "all"}, "_best_ema": np.float64(0.1)}, path)
    ckpt = load_checkpoint(path)
    assert ckpt["logging"]["loss"][0] == 0.5
    assert torch.equal(extract_state_dict(ckpt)["a.weight"], torch.ones(2))


def test_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"network_weights": {}, "payload": _RunsCode(str(marker))}, path)
    with pytest.raises(UnsafeCheckpointError, match="cannot be loaded safely"):
        load_checkpoint(path)
    assert not marker.exists()


class _CallsSystem:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_an_os_system_payload_is_named_and_never_runs(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"network_weights": {"w": torch.zeros(1)}, "x": _CallsSystem(marker)}, tmp_path / "evil.pth")
    with pytest.raises(UnsafeCheckpointError, match=r"evil.pth cannot be loaded safely: it references posix.system"):
        load_checkpoint(tmp_path / "evil.pth")
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"hello world\n", b'{"a": 1}\n', b"q", b"h", b"]", b"(dp0\nS'a'\np1\nI1\ns.",
                                     b"N.", b"\x80\x02}q\x00.", b"X\x01", b"PK\x03\x04 truncated zip"])
def test_files_that_are_not_checkpoints_are_called_so(tmp_path, content):
    (tmp_path / "notes.pth").write_bytes(content)
    with pytest.raises(NnunetTransferError, match=r"notes.pth is not a torch checkpoint \(") as error:
        load_checkpoint(tmp_path / "notes.pth")
    assert not isinstance(error.value, UnsafeCheckpointError) and "\n" not in str(error.value)


def test_a_truncated_checkpoint_is_not_a_checkpoint(tmp_path):
    torch.save({"network_weights": {"w": torch.zeros(100)}}, tmp_path / "full.pth")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "full.pth").read_bytes()[:300])
    with pytest.raises(NnunetTransferError, match="cut.pth is not a torch checkpoint .*completely downloaded"):
        load_checkpoint(tmp_path / "cut.pth")


def test_missing_and_empty_files_give_one_clear_error(tmp_path):
    with pytest.raises(NnunetTransferError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pth")
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(NnunetTransferError, match="empty.pth is an empty file"):
        load_checkpoint(tmp_path / "empty.pth")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(NnunetTransferError, match="holds a list, expected a dict of weights"):
        load_checkpoint(tmp_path / "list.pth")


def test_loaded_tensors_are_on_cpu(tmp_path):
    path = tmp_path / "sd.pth"
    torch.save({"w": torch.arange(3.0)}, path)
    assert load_checkpoint(path)["w"].device.type == "cpu"


@pytest.mark.parametrize("key", ["module.encoder.w", "_orig_mod.encoder.w", "module._orig_mod.encoder.w",
                                 "_orig_mod.module.encoder.w", "encoder.w"])
def test_wrapper_prefixes_are_removed(key):
    assert strip_wrapper_prefixes(key) == "encoder.w"


@pytest.mark.parametrize("container", ["network_weights", "state_dict", "model", None])
def test_state_dict_found_in_common_containers(container):
    sd = {"module.x.weight": torch.zeros(1)}
    ckpt = sd if container is None else {container: sd, "epoch": 3}
    assert list(extract_state_dict(ckpt)) == ["x.weight"]


def test_no_state_dict_is_a_clear_error():
    with pytest.raises(NnunetTransferError, match="No network weights"):
        extract_state_dict({"epoch": 3, "optimizer": {}})


def test_metadata_block():
    assert checkpoint_metadata({METADATA_KEY: {"mode": "segmentation"}}) == {"mode": "segmentation"}
    assert checkpoint_metadata({"network_weights": {}}) is None


def test_cuda_tagged_checkpoint_loads_on_cpu(tmp_path, monkeypatch):
    path = tmp_path / "gpu.pth"
    with monkeypatch.context() as m:  # write the file as a GPU run would: storages tagged "cuda:0"
        m.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save({"network_weights": {"w": torch.ones(3)}}, path)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)
    loaded = load_checkpoint(path)
    assert loaded["network_weights"]["w"].device.type == "cpu" and loaded["network_weights"]["w"].sum() == 3
