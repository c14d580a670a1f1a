"""Atomic writing, plain data for JSON, and the writable-folder check."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import (atomic_directory, atomic_path, plain_data, read_json, require_writable_folder,
                                write_csv_atomic, write_json_atomic)


def test_plain_data_turns_numpy_paths_and_tuples_into_json_types(tmp_path):
    data = {1: np.float32(0.5), "a": np.arange(3), "t": (np.int64(2), tmp_path), "n": [math.nan]}
    assert plain_data(data) == {"1": 0.5, "a": [0, 1, 2], "t": [2, str(tmp_path)], "n": [math.nan]}
    assert plain_data(data, nan_as_none=True)["n"] == [None]
    assert plain_data({"x": np.array([[np.nan, 1.0]])}, nan_as_none=True) == {"x": [[None, 1.0]]}
    write_json_atomic(data, tmp_path / "d.json")
    assert json.loads((tmp_path / "d.json").read_text())["a"] == [0, 1, 2]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.csv"
    write_csv_atomic(pd.DataFrame({"a": [1]}), target)
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text().splitlines() == ["a", "1"] and sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_atomic_directory_replaces_only_when_complete(tmp_path):
    final = tmp_path / "dataset"
    with atomic_directory(final) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(FileExistsError):
        with atomic_directory(final):
            pass
    with pytest.raises(KeyboardInterrupt):
        with atomic_directory(final, overwrite=True) as tmp:
            (tmp / "b").write_text("2")
            raise KeyboardInterrupt
    assert [p.name for p in final.iterdir()] == ["a"] and sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]
    with atomic_directory(final, overwrite=True) as tmp:
        (tmp / "b").write_text("2")
    assert [p.name for p in final.iterdir()] == ["b"]


def test_writable_folder_check(tmp_path):
    assert require_writable_folder(tmp_path / "new" / "deeper", "-o") == tmp_path / "new" / "deeper"
    assert (tmp_path / "new" / "deeper").is_dir() and list((tmp_path / "new" / "deeper").iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(NnunetTransferError, match=r"-o .*file: .*file is a file, not a folder"):
        require_writable_folder(tmp_path / "file", "-o")
    with pytest.raises(NnunetTransferError, match=r"-o .*file/below: .*file is a file, not a folder"):
        require_writable_folder(tmp_path / "file" / "below", "-o")


def test_atomic_files_get_the_permissions_of_a_plain_write(tmp_path):
    import os
    import stat

    from nnunet_transfer.io import write_text_atomic
    umask = os.umask(0o022)
    try:
        new = write_text_atomic("x", tmp_path / "new.txt")
        assert stat.S_IMODE(new.stat().st_mode) == 0o644  # readable by the lab, not owner-only like a temp file
        kept = tmp_path / "kept.txt"
        kept.write_text("old")
        kept.chmod(0o600)
        write_text_atomic("new", kept)
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600 and kept.read_text() == "new"
    finally:
        os.umask(umask)


def test_atomic_folders_get_the_permissions_of_a_plain_mkdir(tmp_path):
    import os
    import stat

    from nnunet_transfer.io import atomic_directory
    umask = os.umask(0o027)
    try:
        with atomic_directory(tmp_path / "dataset") as tmp:
            (tmp / "a").write_text("x")
        assert stat.S_IMODE((tmp_path / "dataset").stat().st_mode) == 0o750
    finally:
        os.umask(umask)


@pytest.mark.parametrize("content", [b'{"folds": {"0": ', b"", b"\xff\xfe not json"])
def test_a_json_file_that_is_not_json_is_one_error_naming_it(tmp_path, content):
    """A truncated, empty or foreign record (a study's external_sources.json, slurm_jobs.json, a state
    file) is one message naming the file, not a traceback."""
    path = tmp_path / "external_sources.json"
    path.write_bytes(content)
    with pytest.raises(NnunetTransferError, match=f"{path} is not valid JSON"):
        read_json(path)
