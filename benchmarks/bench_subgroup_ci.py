"""Benchmark: per-subgroup AUROC with patient-clustered bootstrap CIs.

Compares, on the same data in one process,

* ours: :func:`claimladder.metrics.grouped_roc_auc` (one joint cluster bootstrap,
  integer weights over data sorted once, all subgroups in one sparse pass);
* the peer: a loop over bootstrap resamples, each building the resampled rows and a
  ``fairlearn.metrics.MetricFrame`` of :func:`sklearn.metrics.roc_auc_score` by subgroup
  (overall and by group, as ours);
* for reference, the same loop without fairlearn (boolean masks and
  :func:`sklearn.metrics.roc_auc_score` directly), a tighter hand-written peer.

Both use the *same* patient draws (claimladder's documented draw protocol), so the
replicates must agree to rounding; the script checks that before printing the times.

Usage::

    python benchmarks/bench_subgroup_ci.py [--n 200000 --groups 12 --replicates 200]
    python benchmarks/bench_subgroup_ci.py --large  # 1,000,000 rows, 30 subgroups, 2,000 reps

``--large`` runs ours only (the peer would take hours) and prints wall time and the
process's peak resident memory (``resource.getrusage``).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import warnings

import numpy as np


def make_data(n: int, n_subgroups: int, images_per_patient: int, seed: int):
    """Patient-clustered scores: a patient effect shifts both the label odds and the score."""
    rng = np.random.default_rng(seed)
    n_patients = n // images_per_patient
    patient = np.repeat(np.arange(n_patients), images_per_patient)[:n]
    effect = rng.normal(size=n_patients)
    y = rng.random(n) < 1 / (1 + np.exp(-(-1.5 + effect[patient])))
    score = 1.2 * y + 0.8 * effect[patient] + rng.normal(size=n)
    sizes = rng.dirichlet(np.full(n_subgroups, 2.0))
    subgroup_of_patient = rng.choice(n_subgroups, size=n_patients, p=sizes)
    subgroup = np.array([f"g{k:02d}" for k in range(n_subgroups)])[subgroup_of_patient[patient]]
    return y.astype(int), score, subgroup, patient


def peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(y, score, subgroup, patient, replicates, seed):
    from claimladder.metrics import grouped_roc_auc

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = grouped_roc_auc(y, score, subgroup, groups=patient, n_resamples=replicates,
                                 rng=seed)
    return time.perf_counter() - start, result


def run_peer(y, score, subgroup, patient, replicates, seed):
    """fairlearn MetricFrame + sklearn roc_auc_score over explicit patient resamples."""
    from fairlearn.metrics import MetricFrame
    from sklearn.metrics import roc_auc_score

    start = time.perf_counter()
    _, codes = np.unique(patient, return_inverse=True)
    n_patients = int(codes.max()) + 1
    chunk = 64  # claimladder's draw protocol: one child generator per 64 replicates
    children = np.random.default_rng(seed).spawn(-(-replicates // chunk))
    rows_all = np.arange(len(y))
    by_group, overall = [], []
    for r in range(replicates):
        child = children[r // chunk]
        draw = child.integers(0, n_patients, size=n_patients, dtype=np.int32)
        weights = np.bincount(draw, minlength=n_patients)[codes]
        rows = np.repeat(rows_all, weights)
        frame = MetricFrame(metrics=roc_auc_score, y_true=y[rows], y_pred=score[rows],
                            sensitive_features=subgroup[rows])
        by_group.append(frame.by_group.to_numpy(dtype=float))
        overall.append(float(frame.overall))
    replicates_matrix = np.column_stack([np.array(by_group), np.array(overall)])
    level = 0.95
    ci = np.quantile(replicates_matrix, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return time.perf_counter() - start, replicates_matrix, ci


def run_plain_loop(y, score, subgroup, patient, replicates, seed):
    """The same loop without fairlearn: boolean masks + sklearn roc_auc_score (a tighter peer)."""
    from sklearn.metrics import roc_auc_score

    start = time.perf_counter()
    _, codes = np.unique(patient, return_inverse=True)
    labels = np.unique(subgroup)
    n_patients = int(codes.max()) + 1
    chunk = 64
    children = np.random.default_rng(seed).spawn(-(-replicates // chunk))
    rows_all = np.arange(len(y))
    values = np.empty((replicates, len(labels) + 1))
    for r in range(replicates):
        draw = children[r // chunk].integers(0, n_patients, size=n_patients, dtype=np.int32)
        rows = np.repeat(rows_all, np.bincount(draw, minlength=n_patients)[codes])
        yr, sr, gr = y[rows], score[rows], subgroup[rows]
        for k, label in enumerate(labels):
            mask = gr == label
            values[r, k] = roc_auc_score(yr[mask], sr[mask])
        values[r, -1] = roc_auc_score(yr, sr)
    return time.perf_counter() - start, values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200_000, help="rows (images)")
    parser.add_argument("--groups", type=int, default=12, help="subgroups")
    parser.add_argument("--replicates", type=int, default=200, help="bootstrap replicates")
    parser.add_argument("--images-per-patient", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--large", action="store_true",
                        help="1,000,000 rows, 30 subgroups, 2,000 replicates; ours only")
    args = parser.parse_args(argv)
    if args.large:
        args.n, args.groups, args.replicates = 1_000_000, 30, 2000

    y, score, subgroup, patient = make_data(args.n, args.groups, args.images_per_patient,
                                            args.seed)
    print(f"data: {args.n:,} images, {len(np.unique(patient)):,} patients, "
          f"{args.groups} subgroups, prevalence {y.mean():.3f}, {args.replicates:,} replicates")

    ours_time, result = run_ours(y, score, subgroup, patient, args.replicates, args.seed)
    print(f"ours  (claimladder.metrics.grouped_roc_auc): {ours_time:8.2f} s")
    if args.large:
        print(f"peak resident memory of the process: {peak_rss_mib():,.0f} MiB")
        worst = result.table.sort_values("estimate").iloc[0]
        print(f"lowest subgroup AUROC: {worst['group']} {worst['estimate']:.3f} "
              f"[{worst['ci_low']:.3f}, {worst['ci_high']:.3f}]; overall "
              f"{result.overall.format()}")
        return 0

    peer_time, peer_reps, peer_ci = run_peer(y, score, subgroup, patient, args.replicates,
                                             args.seed)
    print(f"peer  (fairlearn MetricFrame + sklearn loop): {peer_time:8.2f} s")
    print(f"speed-up over the peer: {peer_time / ours_time:.1f}x")
    plain_time, plain_reps = run_plain_loop(y, score, subgroup, patient, args.replicates,
                                            args.seed)
    print(f"plain loop (numpy masks + sklearn, no fairlearn): {plain_time:8.2f} s "
          f"({plain_time / ours_time:.1f}x ours)")
    diff = max(np.nanmax(np.abs(result.replicates - peer_reps)),
               np.nanmax(np.abs(result.replicates - plain_reps)))
    ci_ours = np.array([[e.ci.low, e.ci.high] for e in (*result.estimates, result.overall)]).T
    ci_diff = np.nanmax(np.abs(ci_ours - peer_ci))
    print(f"max |replicate difference| = {diff:.2e}; max |CI bound difference| = {ci_diff:.2e}")
    print(f"peak resident memory of the process: {peak_rss_mib():,.0f} MiB")
    if diff > 1e-9:
        print("ERROR: ours and the peer disagree on the same draws", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
