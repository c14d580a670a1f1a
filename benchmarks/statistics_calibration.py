"""How the study's comparisons behave when training varies: error rates and interval coverage.

Simulates the paired differences (initialisation - scratch) of a study, one value per (seed, test
case): a true difference, a case effect (some cases gain more than others), a seed effect (one
training of an arm differs from another: the spread the issue measured) and a residual. For each
design (number of seeds, cases) and each size of the seed effect it runs many simulated studies
and reports

- how often each test rejects at 0.05 when there is no true difference (type I error): the crossed
  seed x case t-test the report uses with several seeds, and the paired Wilcoxon over the cases
  that treats one training as the truth (seeds averaged);
- how often the report's 95 % interval covers the true difference (the two-level seed x case
  bootstrap with several seeds, the case bootstrap with one);
- the power of the crossed test at a given true difference.

The effect sizes default to what the evidence preset's 3-seed run measured on the anatomy target
(documentation/getting_started.md); pass others with the options.
Run: python benchmarks/statistics_calibration.py [--case-sd 0.02 --seed-sd 0.01 --residual-sd 0.01]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.stats import wilcoxon

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save_results  # noqa: E402

from nnunet_transfer.study.statistics import (bootstrap_interval, crossed_t_test,  # noqa: E402
                                              two_level_interval)


def simulate(rng: np.random.Generator, seeds: int, cases: int, effect: float, case_sd: float, seed_sd: float,
             residual_sd: float) -> np.ndarray:
    return (effect + rng.normal(0, case_sd, (1, cases)) + rng.normal(0, seed_sd, (seeds, 1))
            + rng.normal(0, residual_sd, (seeds, cases)))


def one_design(seeds: int, cases: int, seed_sd: float, args: argparse.Namespace, rng: np.random.Generator) -> dict:
    rejections = {"crossed_t": 0, "wilcoxon_over_cases": 0}
    covered = power = 0
    for _ in range(args.repeats):
        d = simulate(rng, seeds, cases, 0.0, args.case_sd, seed_sd, args.residual_sd)
        rejections["wilcoxon_over_cases"] += wilcoxon(d.mean(axis=0)).pvalue < 0.05
        if seeds >= 2:
            rejections["crossed_t"] += crossed_t_test(d)[0] < 0.05
        low, high = two_level_interval(d) if seeds >= 2 else bootstrap_interval(d[0])
        covered += low <= 0 <= high
        if seeds >= 2:
            shifted = d + args.effect
            power += crossed_t_test(shifted)[0] < 0.05
    n = args.repeats
    return {"seeds": seeds, "cases": cases, "seed_sd": seed_sd,
            "type_I_crossed_t": rejections["crossed_t"] / n if seeds >= 2 else None,
            "type_I_wilcoxon_over_cases": rejections["wilcoxon_over_cases"] / n,
            "coverage_of_the_95_interval": covered / n,
            f"power_crossed_t_at_{args.effect}": power / n if seeds >= 2 else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case-sd", type=float, default=0.002, help="SD of the case effect on the difference")
    parser.add_argument("--seed-sd", type=float, default=0.008, help="SD of the seed effect on the difference")
    parser.add_argument("--residual-sd", type=float, default=0.006, help="SD of the seed x case residual")
    parser.add_argument("--effect", type=float, default=0.02, help="true difference for the power column")
    parser.add_argument("--cases", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = [one_design(seeds, args.cases, seed_sd, args, rng)
            for seed_sd in (0.0, args.seed_sd) for seeds in (1, 3, 5, 10)]
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join("" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v)
                                for v in row.values()) + " |")
    save_results("statistics_calibration", {"settings": vars(args), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
