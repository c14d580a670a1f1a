"""Bad input on the command line: one clear message, exit status 2, no traceback, nothing written."""
import subprocess
import sys

import pytest

from nnunet_transfer.cli import main


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "nnunet_transfer.cli", *args], capture_output=True, text=True,
                          env=env)


def test_env_prints_export_lines(capsys, monkeypatch):
    monkeypatch.delenv("nnUNet_results", raising=False)
    assert main(["env"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("export nnUNet_extTrainer=") and any(o.startswith("export nnUNet_results=") for o in out)


def test_unset_nnunet_folders(monkeypatch, capsys):
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.delenv(name, raising=False)
    assert main(["plan", "-d", "1"]) == 2
    err = capsys.readouterr().err
    assert "nnUNet_raw, nnUNet_preprocessed are not set" in err and "nnunet_transfer env" in err


def test_unknown_dataset_id(nnunet_folders, capsys):
    (nnunet_folders["nnUNet_raw"] / "Dataset004_Something").mkdir()
    assert main(["plan", "-d", "7"]) == 2
    err = capsys.readouterr().err
    assert "Unknown dataset '7'" in err and "Dataset004_Something" in err
    assert "Traceback" not in err


def test_missing_checkpoint_in_a_subprocess_has_no_traceback(nnunet_folders):
    (nnunet_folders["nnUNet_raw"] / "Dataset004_Something").mkdir()
    out = run_cli("attach", "/nonexistent/checkpoint_final.pth", "-d", "4")
    assert out.returncode == 2
    assert "does not exist" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [["plan"], ["attach", "x.pth"], ["demo", "--nope"]])
def test_argument_errors_exit_2(argv):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2


@pytest.mark.parametrize("line, message", [
    ('num_processes = "two"', "'num_processes' is 'two': input should be a valid integer"),
    ('device = "gpu"', "'device' is 'gpu'; choose from cuda, cpu, mps"),
])
def test_a_study_file_of_the_wrong_types_is_one_message(tmp_path, line, message):
    study = tmp_path / "s.toml"
    study.write_text(f'{line}\n[[sources]]\ndataset = 1\n[[targets]]\ndataset = 2\n')
    for action in ("run", "status"):
        out = run_cli("study", action, str(study))
        assert out.returncode == 2 and "Traceback" not in out.stderr and message in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "s").exists()


def test_a_checkpoint_that_is_a_text_file_is_one_message(nnunet_folders, tmp_path):
    (nnunet_folders["nnUNet_raw"] / "Dataset004_Something").mkdir()
    (tmp_path / "notes.pth").write_text("these are my notes, not weights\n")
    out = run_cli("attach", str(tmp_path / "notes.pth"), "-d", "4")
    assert out.returncode == 2 and "notes.pth is not a torch checkpoint" in out.stderr
    assert "Traceback" not in out.stderr and "would run code" not in out.stderr


def test_output_piped_into_head_is_not_an_error(tmp_path):
    study = tmp_path / "s.toml"
    targets = "".join(f'[[targets]]\ndataset = {i}\n' for i in (3, 4, 5))  # > 64 KiB of output: the pipe fills
    study.write_text(f'folds = {list(range(100))}\nnnunet_root = "nn"\n[[sources]]\ndataset = 1\n[[sources]]\n'
                     f'dataset = 2\ntask = "classification"\n{targets}')
    out = subprocess.run(f"{sys.executable} -m nnunet_transfer.cli study run {study} --dry-run | head -1",
                         shell=True, capture_output=True, text=True)
    assert out.stdout.strip().startswith("step") and "Error" not in out.stderr, out.stderr


@pytest.mark.parametrize("values, expected", [
    (["auto"], "auto"), (["T1=0", "FLAIR = T1"], {"T1": "0", "FLAIR": "T1"}), (None, None)])
def test_channel_and_class_maps_are_auto_or_target_source_pairs(values, expected):
    from nnunet_transfer.cli import _name_map
    assert _name_map(values, "--channel-map") == expected


def test_a_map_without_pairs_is_one_message(nnunet_folders, capsys):
    assert main(["preview", "x.pth", "-d", "1", "-c", "2d", "--keep-classes", "liver"]) == 2
    err = capsys.readouterr().err
    assert "--keep-classes takes 'auto' or TARGET=SOURCE pairs (names or indices), got 'liver'" in err
