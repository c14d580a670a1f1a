"""``nnunet_transfer`` command line: argparse entry points that call the typed API functions."""
from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from collections.abc import Sequence

from nnunet_transfer.demo.menu import DATASET_OFFSETS as DEMO_DATASETS
from nnunet_transfer.demo.menu import SOURCES as DEMO_SOURCES
from nnunet_transfer.demo.menu import TARGETS as DEMO_TARGETS
from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.names import (DEFAULT_PLANNER, DEVICES, HEADER_TRANSFORMS, INFLATION_RULES, INPUT_CHANNEL_RULES,
                                   KERNEL_RULES, LOAD_RULES, PLANNERS, PRETRAINING_TASKS, SCRATCH_TRAINER,
                                   SEGMENTATION_PRETRAINER, STRATEGIES, UNMAPPED_CHANNEL_RULES)
from nnunet_transfer.plans_blocks import DEFAULT_PLANS, STRATEGY_KEYS

# errors of the file system that are the user's to fix (a full disk, a read-only folder, a file
# where a folder should be): one message naming the path, like every other bad input
USER_FILE_ERRORS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR, errno.EISDIR,
                    errno.EEXIST, errno.ENAMETOOLONG}


def _default_processes() -> int:
    return int(os.environ.get("nnUNet_def_n_proc", min(8, os.cpu_count() or 1)))


def _add_schedule(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training schedule (written to the plans' training_schedule block)")
    g.add_argument("--epochs", type=int, help="number of epochs (nnU-Net default 1000)")
    g.add_argument("--iterations-per-epoch", type=int, help="training iterations per epoch (default 250)")
    g.add_argument("--val-iterations", type=int, help="validation iterations per epoch (default 50)")
    g.add_argument("--initial-lr", type=float, help="initial learning rate (default 0.01)")
    g.add_argument("--save-every", type=int, help="epochs between checkpoint_latest.pth saves (default 50)")


def _schedule(args: argparse.Namespace) -> dict:
    fields = {"epochs": "num_epochs", "iterations_per_epoch": "num_iterations_per_epoch",
              "val_iterations": "num_val_iterations_per_epoch", "initial_lr": "initial_lr",
              "save_every": "save_every"}
    return {key: getattr(args, arg) for arg, key in fields.items() if getattr(args, arg) is not None}


def cmd_env(args: argparse.Namespace) -> None:
    from nnunet_transfer.environment import export_lines
    print("\n".join(export_lines()))


def cmd_plan(args: argparse.Namespace) -> None:
    from nnunet_transfer.planning.shared import plan_shared
    written = plan_shared(args.datasets[0], args.datasets[1:], args.plans, args.configurations, args.np,
                          run_preprocessing=not args.no_preprocess, clean=args.clean, verify=args.verify,
                          gpu_memory_target_in_gb=args.gpu_memory_target, schedule=_schedule(args),
                          batch_size=args.batch_size, twin=args.twin_2d, planner=args.planner)
    for name, path in written.items():
        print(f"{name}: {path}")


def cmd_plan_like_checkpoint(args: argparse.Namespace) -> None:
    from nnunet_transfer.planning.like_checkpoint import plan_like_checkpoint
    from nnunet_transfer.planning.spacing import parse_spacing_rule
    rules = _rules(args)  # a bad option is reported before anything is fetched
    spacing = parse_spacing_rule(args.spacing)
    written = plan_like_checkpoint(_resolved(args.checkpoint).path, args.datasets, args.plans, args.configuration,
                                   args.np, run_preprocessing=not args.no_preprocess, clean=args.clean,
                                   schedule=_schedule(args), rules=rules, spacing=spacing)
    for name, path in written.items():
        print(f"{name}: {path}")


def _resolved(checkpoint: str):
    """A checkpoint argument as a local file: a hub reference is fetched (or found in the cache) first."""
    from nnunet_transfer.hub import resolve_checkpoint
    resolved = resolve_checkpoint(checkpoint)
    if resolved.is_hub:
        print(f"checkpoint: {resolved.pinned} -> {resolved.path}")
    return resolved


def _name_map(values: list[str] | None, option: str) -> str | dict[str, str] | None:
    """``--channel-map`` / ``--keep-classes`` values: ``auto`` or TARGET=SOURCE pairs."""
    if not values:
        return None
    if values == ["auto"]:
        return "auto"
    pairs = [v.split("=", 1) for v in values]
    bad = [v for v, p in zip(values, pairs) if len(p) != 2 or not p[0].strip() or not p[1].strip()]
    if bad:
        raise NnunetTransferError(f"{option} takes 'auto' or TARGET=SOURCE pairs (names or indices), got {bad[0]!r}.")
    return {t.strip(): s.strip() for t, s in pairs}


def _rules(args: argparse.Namespace):
    from nnunet_transfer.transfer.rules import TransferRules
    return TransferRules(load=getattr(args, "load", None), input_channels=args.input_channels,
                         inflation=getattr(args, "inflation", "average"), kernel=getattr(args, "kernel", "crop"),
                         strict=getattr(args, "strict", False),
                         allow_no_encoder_weights=getattr(args, "allow_no_encoder_weights", False),
                         channel_map=_name_map(args.channel_map, "--channel-map"),
                         unmapped_channels=args.unmapped_channels,
                         keep_classes=_name_map(getattr(args, "keep_classes", None), "--keep-classes"))


def _add_channel_rules(g) -> None:
    g.add_argument("--input-channels", default="sum", choices=INPUT_CHANNEL_RULES,
                   help="N->1 input channels: sum (default) or mean; tile for any N->M (1->N always repeats / N)")
    g.add_argument("--channel-map", nargs="+", metavar="TARGET=SOURCE",
                   help="feed target input channels from checkpoint channels by name or index (e.g. T1=T1 "
                        "FLAIR=T1), or 'auto' (same names); replaces --input-channels")
    g.add_argument("--unmapped-channels", default="zero", choices=UNMAPPED_CHANNEL_RULES,
                   help="target channels --channel-map leaves out: zero weights (default), the mean of the "
                        "checkpoint's channels, or random initialisation")


def _add_rules(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("transfer rules (written to the plans' transfer block)")
    g.add_argument("--load", choices=LOAD_RULES,
                   help="which part of the network to load (heads never); default: encoder for classification, "
                        "rotation and contrastive checkpoints, else encoder+decoder")
    _add_channel_rules(g)
    g.add_argument("--keep-classes", nargs="+", metavar="TARGET=SOURCE",
                   help="keep the head rows of classes both have, by label name or value (e.g. liver=liver), or "
                        "'auto' (same names); the other rows are initialised. Needs the decoder loaded")
    g.add_argument("--inflation", default="average", choices=INFLATION_RULES,
                   help="2D->3D kernel inflation (default average)")
    g.add_argument("--kernel", default="crop", choices=KERNEL_RULES,
                   help="kernel-size mismatch: centre crop / zero pad (default) or average")
    g.add_argument("--strict", action="store_true", help="fail if any encoder weight is not loaded or adapted")
    g.add_argument("--allow-no-encoder-weights", action="store_true",
                   help="accept a checkpoint that loads or adapts no encoder weight (by default an error: the "
                        "fine-tuning would start from scratch)")


def cmd_attach(args: argparse.Namespace) -> None:
    from nnunet_transfer.planning.attach import attach
    strategy = {k: getattr(args, k) for k in STRATEGY_KEYS if getattr(args, k) is not None}
    rules = _rules(args)  # a bad option is reported before anything is fetched
    checkpoint = _resolved(args.checkpoint)
    for dataset in args.datasets:
        path = attach(checkpoint, dataset, args.plans, args.output_plans, rules, strategy)
        print(f"{dataset}: {path}")
        print(f"  train with: nnUNetv2_train {dataset} CONFIG FOLD -tr nnUNetTrainerFinetune -p {path.stem}")


def cmd_preview(args: argparse.Namespace) -> None:
    from nnunet_transfer.planning.preview import preview
    rules = _rules(args)  # a bad option is reported before anything is fetched
    checkpoint = _resolved(args.checkpoint)
    report = preview(checkpoint.path, args.dataset, args.plans, args.configuration, rules)
    report.checkpoint_sha256, report.checkpoint_origin = checkpoint.sha256, checkpoint.pinned
    print(report.summary(max_lines=40))
    if args.json:
        from nnunet_transfer.io import write_json_atomic
        print(f"report: {write_json_atomic(report.to_dict(), args.json)}")


def cmd_diagnose(args: argparse.Namespace) -> None:
    from nnunet_transfer.diagnostics import diagnose
    result = diagnose(args.dataset, args.plans, args.configuration, args.fold, args.trainer, args.baseline_plans,
                      args.baseline_trainer, args.iterations, args.device, args.output)
    print("findings:" if result.data["findings"] else "findings: none (no threshold clearly crossed)")
    for finding in result.data["findings"]:
        print(f"  - {finding}")
    for kind, path in result.files.items():
        print(f"{kind}: {path}")


def cmd_pretrain_then_plan(args: argparse.Namespace) -> None:
    from nnunet_transfer.pipeline import pretrain_then_plan
    result = pretrain_then_plan(args.source, args.targets, args.configuration, args.plans, args.trainer,
                                _schedule(args), args.np, args.device, planner=args.planner)
    print(f"checkpoint: {result.checkpoint}")
    for name, path in result.target_plans.items():
        print(f"{name}: {path}")
    print("next:\n  " + "\n  ".join(result.finetune_commands))


def cmd_demo(args: argparse.Namespace) -> None:
    from nnunet_transfer.demo.run import run_demo
    if args.quick and args.preset not in (None, "quick"):
        raise NnunetTransferError(f"--quick is --preset quick; it cannot be combined with --preset {args.preset}")
    run_demo(args.output, seed=args.seed, device=args.device, fresh=args.fresh, sources=args.sources,
             preset="quick" if args.quick else args.preset or "default", targets=args.targets,
             training_seeds=args.training_seeds)


def cmd_demo_data(args: argparse.Namespace) -> None:
    from nnunet_transfer.demo.datasets import DemoDataSize, write_demo_datasets
    size = DemoDataSize(spacing_mm=args.spacing, n_train=args.n_train, n_test=args.n_test,
                        n_natural=args.n_natural, natural_size=args.natural_size)
    written = write_demo_datasets(args.output, size, seed=args.seed, first_id=args.first_id,
                                  which=args.which, overwrite=args.overwrite, num_workers=args.np)
    for key, path in written.items():
        print(f"{key}: {path}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nnunet_transfer", description=(
        "Transfer learning on top of nnU-Net v2: shared plans, pretraining, weight transfer, fine-tuning."))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_convert(sub)

    from nnunet_transfer.evaluation.cli import add_parser as add_evaluate_parser
    add_evaluate_parser(sub)

    p = sub.add_parser("study", help="run a transfer study from a study file: plan, pretrain, fine-tune, test, "
                                     "compare (resumable)")
    p.add_argument("action", choices=["run", "status", "report", "schema"],
                   help="run: every step not done yet, then the report; status: counts per state, then every step "
                        "not done: running, failed (with its error and log), ready, waiting or blocked (with what "
                        "it waits for); "
                        "report: the comparison table and figures; schema: print the JSON Schema of study files")
    p.add_argument("study", metavar="STUDY.toml", nargs="?",
                   help="the study file (see documentation/reference/study.md); not for schema")
    p.add_argument("--launcher", choices=["local", "slurm", "submitit-local"],
                   help="run: where steps run (default: the study file's launcher.kind, else local)")
    p.add_argument("--dry-run", action="store_true", help="run: list the steps (local) or jobs (slurm, "
                                                          "submitit-local) that would run; run nothing")
    p.add_argument("--gpus", nargs="+", metavar="DEVICE",
                   help="run (local): jobs side by side, one per device id, each with CUDA_VISIBLE_DEVICES set to it "
                        "(default: the study file's launcher.gpus, else one step after another in this process)")
    p.add_argument("--all", action="store_true", dest="all_steps",
                   help="status: every step, the done ones too (with how long each ran)")
    p.set_defaults(func=cmd_study)

    p = sub.add_parser("env", help="print the export lines that make stock nnU-Net find our trainers")
    p.set_defaults(func=cmd_env)

    p = sub.add_parser("plan", help="shared plans: plan the first dataset, give all others its architecture")
    p.add_argument("-d", "--datasets", nargs="+", required=True, metavar="DATASET",
                   help="dataset ids or names; the FIRST is the reference that nnU-Net plans")
    p.add_argument("-c", "--configurations", nargs="+", default=["2d", "3d_fullres"],
                   help="nnU-Net configurations to share (default 2d 3d_fullres)")
    p.add_argument("-p", "--plans", default=DEFAULT_PLANS, help=f"plans name (default {DEFAULT_PLANS})")
    p.add_argument("-np", type=int, default=_default_processes(), help="processes for fingerprint/preprocessing")
    p.add_argument("--no-preprocess", action="store_true", help="write the plans only")
    p.add_argument("--clean", action="store_true", help="re-extract fingerprints that already exist")
    p.add_argument("--verify", action="store_true", help="run nnU-Net's dataset integrity check first")
    p.add_argument("--planner", default=DEFAULT_PLANNER, choices=PLANNERS,
                   help="nnU-Net's experiment planner: ExperimentPlanner (plain U-Net, default) or a residual-encoder "
                        "preset nnUNetPlannerResEncM / L / XL (nnU-Net's recommended presets)")
    p.add_argument("--gpu-memory-target", type=float,
                   help="planner GPU memory target in GB (default: the planner's, 8 / 8 / 24 / 40)")
    p.add_argument("--batch-size", type=int, help="shared batch size instead of nnU-Net's choice for the reference")
    p.add_argument("--twin-2d", action="store_true",
                   help="add 2d_twin: the 2D twin of the reference's 3d_fullres network, for 2D sources")
    _add_schedule(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("plan-like-checkpoint", help="plan and preprocess targets with a checkpoint's architecture")
    p.add_argument("checkpoint", help="checkpoint file, or hub id hf://OWNER/REPO[@REVISION][:FILE] / huggingface.co "
                                      "URL (fetched once into the cache)")
    p.add_argument("-d", "--datasets", nargs="+", required=True, metavar="DATASET", help="target dataset ids or names")
    p.add_argument("-c", "--configuration", help="defaults to the checkpoint's configuration")
    p.add_argument("-p", "--plans", default=DEFAULT_PLANS, help=f"plans name to write (default {DEFAULT_PLANS})")
    p.add_argument("-np", type=int, default=_default_processes(), help="processes for fingerprint/preprocessing")
    p.add_argument("--no-preprocess", action="store_true", help="write the plans only")
    p.add_argument("--clean", action="store_true", help="re-extract fingerprints that already exist")
    p.add_argument("--spacing", nargs="+", metavar="RULE",
                   help="spacing the targets are preprocessed at: 'checkpoint' (the pretraining's; a checkpoint "
                        "pretrained without resampling: 'none'), 'nnunet' (nnU-Net's own per target), 'none' (no "
                        "training case resampled; refused when their spacings differ) or X Y Z: a fixed spacing in "
                        "mm in nnU-Net's image axis order (as 'spacings' in dataset_fingerprint.json; for NIfTI the "
                        "reverse of the header's x y z), transposed here like the data. Default: 'checkpoint' for "
                        "nnssl checkpoints, 'nnunet' for ours and nnU-Net's")
    _add_channel_rules(p.add_argument_group("input channels the checkpoint must feed (as attach will map them)"))
    _add_schedule(p)
    p.set_defaults(func=cmd_plan_like_checkpoint)

    p = sub.add_parser("attach", help="write a plans copy whose 'transfer' block names a checkpoint")
    p.add_argument("checkpoint", help="pretraining checkpoint (ours or any nnU-Net checkpoint): a file, or hub id "
                                      "hf://OWNER/REPO[@REVISION][:FILE] / huggingface.co URL")
    p.add_argument("-d", "--datasets", nargs="+", required=True, metavar="DATASET", help="target dataset ids or names")
    p.add_argument("-p", "--plans", default=DEFAULT_PLANS, help="the target's existing plans")
    p.add_argument("-o", "--output-plans", help="name of the plans copy (default <plans>_from_<source>)")
    _add_rules(p)
    g = p.add_argument_group("fine-tuning strategy (override the trainer's defaults)")
    g.add_argument("--warmup-epochs", type=int, help="linear learning-rate warm-up epochs")
    g.add_argument("--frozen-encoder-epochs", type=int, help="epochs with a frozen encoder")
    g.add_argument("--encoder-lr-factor", type=float, help="encoder lr = factor x base lr")
    p.set_defaults(func=cmd_attach)

    p = sub.add_parser("preview", help="print the TransferReport of a checkpoint into a target, without training")
    p.add_argument("checkpoint", help="checkpoint file, or hub id hf://OWNER/REPO[@REVISION][:FILE] / huggingface.co "
                                      "URL")
    p.add_argument("-d", "--dataset", required=True, help="target dataset id or name")
    p.add_argument("-p", "--plans", default=DEFAULT_PLANS, help=f"the target's plans (default {DEFAULT_PLANS})")
    p.add_argument("-c", "--configuration", required=True, help="the target configuration")
    p.add_argument("--json", help="also write the full report to this JSON file")
    _add_rules(p)
    p.set_defaults(func=cmd_preview)

    p = sub.add_parser("diagnose", help="what the transferred initialisation does to the network at the start of "
                                        "fine-tuning, against the same network freshly initialised")
    p.add_argument("dataset", metavar="DATASET", help="target dataset id or name")
    p.add_argument("-p", "--plans", required=True, help="the fine-tuning plans: with a transfer block, as attach "
                                                        "writes them")
    p.add_argument("-c", "--configuration", help="default: the configuration a run of the trainer exists for, else "
                                                 "the plans' only one")
    p.add_argument("-f", "--fold", default="0", help="fold: a number or all (default 0)")
    p.add_argument("-tr", "--trainer", default=STRATEGIES["finetune"], metavar="TRAINER",
                   help="the fine-tuning trainer, looked up as nnUNetv2_train does (default %(default)s)")
    p.add_argument("--baseline-plans", help="plans of the baseline run whose curves are shown (default: --plans)")
    p.add_argument("--baseline-trainer", default=SCRATCH_TRAINER, metavar="TRAINER",
                   help="trainer of the baseline run (default %(default)s)")
    p.add_argument("--iterations", type=int, help="training iterations of each network for the gradient norms "
                                                  "(default: one epoch of the plans' schedule)")
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda if available")
    p.add_argument("-o", "--output", help="output folder (default: diagnostics/ in the fine-tuning run's fold "
                                          "folder)")
    p.set_defaults(func=cmd_diagnose)

    p = sub.add_parser("pretrain-then-plan", help="plan+pretrain a source, then plan its targets like the "
                                                  "checkpoint and attach it")
    p.add_argument("-s", "--source", required=True, help="source dataset id or name")
    p.add_argument("-t", "--targets", nargs="+", required=True, help="target dataset ids or names")
    p.add_argument("-c", "--configuration", default="3d_fullres", help="configuration (default 3d_fullres)")
    p.add_argument("-p", "--plans", default=DEFAULT_PLANS, help=f"plans name (default {DEFAULT_PLANS})")
    p.add_argument("-tr", "--trainer", default=SEGMENTATION_PRETRAINER, choices=list(PRETRAINING_TASKS.values()),
                   metavar="TRAINER", help="pretraining trainer: " + ", ".join(PRETRAINING_TASKS.values())
                   + " (default %(default)s)")
    p.add_argument("-np", type=int, default=_default_processes(), help="processes for fingerprint/preprocessing")
    p.add_argument("--planner", default=DEFAULT_PLANNER, choices=PLANNERS,
                   help="nnU-Net's experiment planner of the source (default ExperimentPlanner)")
    p.add_argument("--device", choices=DEVICES, help="default: cuda if available")
    _add_schedule(p)
    p.set_defaults(func=cmd_pretrain_then_plan)

    p = sub.add_parser("demo", help="make the embedded data, pretrain, fine-tune on three targets, compare")
    p.add_argument("--preset", choices=["quick", "evidence", "default"],
                   help="quick: a smoke test of the chain (about 8 minutes on 2 CPU cores); evidence: a label-"
                        "efficiency study that compares (about 20 minutes on 2 CPU cores); default: all sources, "
                        "targets and two training sizes in 3d, sized for one GPU (about 2 hours)")
    p.add_argument("--quick", action="store_true", help="the same as --preset quick")
    p.add_argument("-o", "--output", default="nnunet_transfer_demo", help="working folder (default ./%(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the demo data (default 0)")
    p.add_argument("--device", choices=DEVICES, help="default: cuda if available")
    p.add_argument("--fresh", action="store_true", help="delete the working folder first")
    p.add_argument("--sources", nargs="+", metavar="SOURCE", choices=[*DEMO_SOURCES, "all"],
                   help=f"pretraining sources (task x domain): {', '.join(DEMO_SOURCES)}, or all (default: the "
                        f"preset's; all {len(DEMO_SOURCES)} except in the evidence preset)")
    p.add_argument("--targets", nargs="+", metavar="TARGET", choices=list(DEMO_TARGETS),
                   help=f"targets: {', '.join(DEMO_TARGETS)} (default: the preset's)")
    p.add_argument("--training-seeds", nargs="+", type=int, metavar="SEED",
                   help="train every fine-tuning and scratch run once per seed (the study's seeds; default 0 only); "
                        "seed 0's runs are those of a one-seed run, so adding seeds reuses them")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("demo-data", help="write all embedded demo datasets as nnU-Net raw datasets")
    p.add_argument("-o", "--output", required=True, help="nnUNet_raw folder to write into")
    p.add_argument("--spacing", type=float, default=2.0, help="voxel size in mm of the MRI datasets")
    p.add_argument("--n-train", type=int, default=20, help="training cases per MRI dataset (default 20)")
    p.add_argument("--n-test", type=int, default=10, help="test cases per target dataset (default 10)")
    p.add_argument("--n-natural", type=int, default=200, help="cases per natural-image dataset (default 200)")
    p.add_argument("--natural-size", type=int, default=128, help="edge of natural-image crops in pixels")
    p.add_argument("--seed", type=int, default=0, help="same seed, same data (default 0)")
    p.add_argument("--first-id", type=int, default=900, help="dataset ids are first-id + offset (default 900)")
    p.add_argument("--which", nargs="+", metavar="KEY", choices=list(DEMO_DATASETS),
                   help=f"only these datasets: {', '.join(DEMO_DATASETS)}")
    p.add_argument("--overwrite", action="store_true", help="replace existing demo datasets")
    p.add_argument("-np", type=int, default=1, help="worker processes (default 1)")
    p.set_defaults(func=cmd_demo_data)
    return parser


def cmd_convert(args: argparse.Namespace) -> None:
    from nnunet_transfer.conversion.run import bad_cases_message, convert
    from nnunet_transfer.conversion.validate import GeometryPolicy
    from nnunet_transfer.layout import require_nnunet_folders

    raw = args.raw_folder or require_nnunet_folders("nnUNet_raw")["nnUNet_raw"]
    result = convert(args.converter, args.source, args.dataset_id, raw, name=args.name, overwrite=args.overwrite,
                     dry_run=args.dry_run, skip_bad=args.skip_bad, workers=args.workers,
                     policy=GeometryPolicy(args.geometry_tolerance, args.resample_to_image, args.header_transform),
                     options={dest: getattr(args, dest) for dest in args.option_dests})
    if args.dry_run:
        for r in result.results:
            print(f"{r.case.case_id}\t{r.case.split}\t{', '.join(r.files)}" + ("\tBAD" if r.problems else ""))
        if result.bad:
            print(bad_cases_message(result.bad, len(result.results)))
    elif result.bad:
        print(f"skipped {len(result.bad)} bad case(s) (listed in dataset.json):", file=sys.stderr)
        print(bad_cases_message(result.bad, len(result.results)).split("\n", 1)[1].rsplit("\n", 1)[0],
              file=sys.stderr)
    print(result.summary())


def cmd_study(args: argparse.Namespace) -> None:
    from nnunet_transfer.study.spec import json_schema, load_study
    if args.action == "schema":
        print(json.dumps(json_schema(), indent=2))
        return
    if args.study is None:
        raise NnunetTransferError(f"study {args.action} needs the study file: nnunet_transfer study {args.action} "
                                  f"STUDY.toml")
    study = load_study(args.study)
    if args.action == "status":
        from nnunet_transfer.study.status import print_status
        print_status(study, all_steps=args.all_steps)
        return
    if args.action == "run":
        launcher = args.launcher or study.launcher.kind
        if launcher == "local":
            from nnunet_transfer.study.runner import run_local
            if args.dry_run:
                from nnunet_transfer.study.paths import activate
                from nnunet_transfer.study.status import status_table
                activate(study)
                table = status_table(study)
                print(table[table["status"] != "done"][["step", "status"]].to_string(index=False))
                return
            devices = args.gpus or study.launcher.gpus
            if devices:
                from nnunet_transfer.study.parallel import run_parallel
                failed = run_parallel(study, devices)
            else:
                failed = run_local(study)
            if failed:
                raise NnunetTransferError(f"{len(failed)} step(s) failed: {', '.join(failed)}; see "
                                          f"'nnunet_transfer study status {args.study}' for their logs")
        else:
            from nnunet_transfer.study.launch import submit
            try:
                table = submit(study, launcher, dry_run=args.dry_run)
            except Exception as e:  # submitit's FailedJobError carries the job's whole traceback
                if isinstance(e, NnunetTransferError):
                    raise
                from nnunet_transfer.study.status import status_table
                failed = status_table(study).query("status == 'failed'")
                detail = "; ".join(f"{r.step}: {r.error} (log: {r.log})" for r in failed.itertuples()) or str(e)[-500:]
                raise NnunetTransferError(f"a {launcher} job failed: {detail}") from None
            print(table.to_string(index=False))
            if launcher == "slurm" and not args.dry_run:
                print(f"submitted; follow with: nnunet_transfer study status {args.study}")
                return
        if args.dry_run:
            return
    from nnunet_transfer.study.report import write_report
    from nnunet_transfer.study.steps import activate
    activate(study)
    files = write_report(study)
    print(files["table_md"].read_text())
    print("\n".join(f"{k}: {v}" for k, v in files.items()))
    print(f"Report (open in a browser): {files['report_html'].resolve().as_uri()}")


def _add_convert(sub) -> None:
    from nnunet_transfer.conversion.registry import converters

    p = sub.add_parser("convert", help="turn a public dataset's download, as published, into an nnU-Net raw dataset",
                       description="Convert a public dataset's download into an nnU-Net raw dataset. Run "
                                   "'nnunet_transfer convert DATASET -h' for a dataset's own options.")
    datasets = p.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    for key, converter in converters().items():
        q = datasets.add_parser(key, help=converter.title, description=f"{converter.title}. {converter.help}")
        q.add_argument("source", metavar="SOURCE_DIR", help="the extracted download (only read, never modified)")
        q.add_argument("-d", dest="dataset_id", type=int, required=True, help="nnU-Net dataset id (1-999)")
        q.add_argument("--name", help=f"dataset name (default {converter.default_name}): DatasetXXX_NAME")
        q.add_argument("--raw-folder", help="where to write (default $nnUNet_raw)")
        q.add_argument("--overwrite", action="store_true", help="replace an existing dataset of the same id and name")
        q.add_argument("--dry-run", action="store_true", help="read and check every case, list what would be "
                                                               "written and every problem; write nothing")
        q.add_argument("--skip-bad", action="store_true", help="convert the good cases, list the bad ones")
        q.add_argument("--workers", type=int, default=_default_processes(), help="parallel reader processes")
        q.add_argument("--geometry-tolerance", type=float, default=1e-3,
                       help="largest header difference (mm) between image and mask copied over (default 1e-3)")
        q.add_argument("--resample-to-image", action="store_true",
                       help="resample masks / channels whose geometry differs beyond the tolerance onto the image")
        q.add_argument("--header-transform", choices=HEADER_TRANSFORMS,
                       help="for NIfTI files whose qform and sform disagree: place them by this transform (default: "
                            "such a file makes its case bad, with both origins in the message)")
        group = q.add_argument_group(f"{key} options")
        converter.add_arguments(group)
        q.set_defaults(func=cmd_convert, converter=converter, option_dests=[a.dest for a in group._group_actions])


def main(argv: Sequence[str] | None = None) -> int:
    # Before torch is imported: libgomp's default wait policy stalls small CPU machines (see
    # nnunet_transfer.environment.nnunet_subprocess_env).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except NnunetTransferError as e:
        print(f"nnunet_transfer {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` / a pager that closed early: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 0
    except OSError as e:
        if e.errno not in USER_FILE_ERRORS:
            raise
        where = f"{e.filename}: " if e.filename else ""
        print(f"nnunet_transfer {args.command}: error: {where}{e.strerror}; check the path and its permissions "
              f"and choose a location you can write to", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
