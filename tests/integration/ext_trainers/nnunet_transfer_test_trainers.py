"""A trainer for tests/integration/test_transfer_strategies.py, found by stock ``nnUNetv2_train`` through
``nnUNet_extTrainer`` (this folder after ours): the frozen-encoder strategy, recording a digest of the
encoder's first weight after every epoch, and killing itself with SIGKILL (as a crash would) right
after the epoch given in ``NNUNET_TRANSFER_TEST_KILL_AFTER_EPOCH``. Module-level imports only: nnU-Net
imports this file as a top-level module and drops it from ``sys.modules`` after the lookup."""
import hashlib
import json
import os
import signal
from os.path import join

from nnunet_transfer.trainers.finetune import nnUNetTrainerFinetuneFrozenEncoder
from nnunet_transfer.transfer.load import unwrap_model

KILL_AFTER = "NNUNET_TRANSFER_TEST_KILL_AFTER_EPOCH"
RECORD_FILE = "encoder_record.jsonl"
STEM = "encoder.stages.0.0.convs.0.conv.weight"


def digest(tensor) -> str:
    return hashlib.sha256(tensor.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


class nnUNetTrainerFinetuneFrozenEncoderRecorded(nnUNetTrainerFinetuneFrozenEncoder):
    def on_epoch_end(self):
        super().on_epoch_end()  # logs, saves checkpoint_latest.pth, then counts the epoch
        weight = unwrap_model(self.network).state_dict()[STEM]
        with open(join(self.output_folder, RECORD_FILE), "a", encoding="utf-8") as f:
            f.write(json.dumps({"epochs_done": self.current_epoch, "stem": digest(weight)}) + "\n")
        if os.environ.get(KILL_AFTER) and self.current_epoch == int(os.environ[KILL_AFTER]):
            os.kill(os.getpid(), signal.SIGKILL)
