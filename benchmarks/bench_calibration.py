"""Benchmark: ECE and reliability curves with patient-clustered bootstrap CIs per subgroup.

Compares, on the same data in one process,

* ours: :func:`claimladder.calibration.calibration_table` (ECE of every subgroup and of all
  rows, one joint cluster bootstrap: per-bin sums as one sparse product per replicate) and
  :func:`claimladder.calibration.reliability_curve` (``method="bootstrap"``, per-bin
  observed rates of every subgroup from one joint bootstrap);
* the peers: the loop a user would write without claimladder: for every bootstrap replicate,
  build the resampled rows (the same patient draws, claimladder's documented protocol), then
  for every subgroup call ``netcal.metrics.ECE(n_bins).measure`` and
  ``sklearn.calibration.calibration_curve``.

The peers are too slow to run every replicate on a million rows, so by default they run the
first ``--peer-replicates`` replicates and the script extrapolates linearly to the full
count (printed as such); ``--peer-replicates`` equal to ``--replicates`` runs them fully.
The script checks that the peers' per-replicate ECE equals ours on the replicates it ran.

Usage::

    python benchmarks/bench_calibration.py            # 1,000,000 rows, 30 subgroups, 200 reps
    python benchmarks/bench_calibration.py --replicates 2000 --peer-replicates 3
    python benchmarks/bench_calibration.py --n 100000 --peer-replicates 200  # full peer run
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import warnings

import numpy as np


def make_data(n: int, n_subgroups: int, images_per_patient: int, seed: int):
    """Patient-clustered probabilities, miscalibrated differently in each subgroup."""
    rng = np.random.default_rng(seed)
    n_patients = n // images_per_patient
    patient = np.repeat(np.arange(n_patients), images_per_patient)[:n]
    effect = rng.normal(size=n_patients)
    sizes = rng.dirichlet(np.full(n_subgroups, 2.0))
    subgroup_of_patient = rng.choice(n_subgroups, size=n_patients, p=sizes)
    k = subgroup_of_patient[patient]
    logit = -1.0 + effect[patient] + rng.normal(size=n)
    y = rng.uniform(size=n) < 1 / (1 + np.exp(-logit))
    slope = 0.6 + 0.04 * k  # subgroup-specific over/under-confidence
    p = 1 / (1 + np.exp(-(slope * logit + 0.1)))
    labels = np.array([f"g{j:02d}" for j in range(n_subgroups)])
    return y.astype(int), p, labels[k], patient


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_ours(y, p, subgroup, patient, replicates, n_bins, seed):
    from claimladder.calibration import calibration_table, reliability_curve

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        table = calibration_table(y, p, subgroup, groups=patient,
                                  metrics=["expected_calibration_error"], n_bins=n_bins,
                                  n_resamples=replicates, rng=seed)
        t_table = time.perf_counter() - start
        start = time.perf_counter()
        curve = reliability_curve(y, p, n_bins=n_bins, subgroup=subgroup, groups=patient,
                                  method="bootstrap", n_resamples=replicates, rng=seed)
        t_curve = time.perf_counter() - start
    return t_table, t_curve, table, curve


def our_ece_replicates(y, p, subgroup, patient, replicates, n_bins, seed):
    """Our ECE replicates (subgroups then overall), from the same joint bootstrap as the table."""
    from claimladder.calibration._binned import BINNED_OUTPUTS, bin_edges, binned_statistic
    from claimladder.calibration._inputs import binary_inputs, subgroup_codes
    from claimladder.calibration._resample import bootstrap_options, make_parts, resample

    data = binary_inputs(y, p, groups=patient, pos_label=1, owner="bench")
    sub, labels = subgroup_codes(subgroup, data.n, "bench")
    parts = make_parts(data.clusters, data.y, sub, labels, True)

    def build(part):
        pp = data.p[part.rows]
        return binned_statistic(data.y[part.rows], pp, part.codes, data.clusters.n_clusters,
                                bin_edges(pp, n_bins, "uniform"))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = resample(parts, build, outputs=BINNED_OUTPUTS,
                          opts=bootstrap_options("bootstrap", replicates, 0.95, "bench"),
                          rng=seed, title="bench")
    return result.replicates[:, :, 0]


def run_peers(y, p, subgroup, patient, replicates, n_bins, seed):
    """netcal ECE and sklearn calibration_curve per subgroup over explicit patient resamples."""
    from netcal.metrics import ECE
    from sklearn.calibration import calibration_curve

    labels = np.unique(subgroup)
    _, codes = np.unique(patient, return_inverse=True)
    n_patients = int(codes.max()) + 1
    chunk = 64  # claimladder's draw protocol: one child generator per 64 replicates
    children = np.random.default_rng(seed).spawn(-(-replicates // chunk))
    rows_all = np.arange(len(y))
    ece = ECE(n_bins)
    t_netcal = t_sklearn = t_resample = 0.0
    values = np.empty((replicates, len(labels) + 1))
    for r in range(replicates):
        start = time.perf_counter()
        draw = children[r // chunk].integers(0, n_patients, size=n_patients, dtype=np.int32)
        rows = np.repeat(rows_all, np.bincount(draw, minlength=n_patients)[codes])
        yr, pr, gr = y[rows], p[rows], subgroup[rows]
        masks = [gr == label for label in labels]
        t_resample += time.perf_counter() - start
        start = time.perf_counter()
        for k, mask in enumerate(masks):
            values[r, k] = ece.measure(pr[mask], yr[mask])
        values[r, -1] = ece.measure(pr, yr)
        t_netcal += time.perf_counter() - start
        start = time.perf_counter()
        for mask in masks:
            calibration_curve(yr[mask], pr[mask], n_bins=n_bins)
        calibration_curve(yr, pr, n_bins=n_bins)
        t_sklearn += time.perf_counter() - start
    return t_resample, t_netcal, t_sklearn, values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="rows (predictions)")
    parser.add_argument("--groups", type=int, default=30, help="subgroups")
    parser.add_argument("--replicates", type=int, default=200, help="bootstrap replicates")
    parser.add_argument("--peer-replicates", type=int, default=5,
                        help="replicates the peers actually run (extrapolated to --replicates)")
    parser.add_argument("--bins", type=int, default=15)
    parser.add_argument("--images-per-patient", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    peer_reps = min(args.peer_replicates, args.replicates)

    y, p, subgroup, patient = make_data(args.n, args.groups, args.images_per_patient,
                                        args.seed)
    print(f"data: {args.n:,} predictions, {len(np.unique(patient)):,} patients, "
          f"{args.groups} subgroups, {args.bins} bins, prevalence {y.mean():.3f}, "
          f"{args.replicates:,} cluster-bootstrap replicates")

    t_table, t_curve, table, curve = run_ours(y, p, subgroup, patient, args.replicates,
                                              args.bins, args.seed)
    ours = t_table + t_curve
    print(f"ours  ECE table (calibration_table):            {t_table:8.2f} s")
    print(f"ours  reliability bands (reliability_curve):    {t_curve:8.2f} s")
    print(f"ours  total:                                    {ours:8.2f} s")

    t_res, t_net, t_sk, peer_values = run_peers(y, p, subgroup, patient, peer_reps, args.bins,
                                                args.seed)
    scale = args.replicates / peer_reps
    note = "" if peer_reps == args.replicates else (
        f"  (ran {peer_reps} replicates, extrapolated x{scale:g})")
    resample_full, netcal_full, sklearn_full = t_res * scale, t_net * scale, t_sk * scale
    print(f"peer  resampling rows (numpy):                  {resample_full:8.2f} s{note}")
    print(f"peer  netcal ECE per subgroup:                  {netcal_full:8.2f} s{note}")
    print(f"peer  sklearn calibration_curve per subgroup:   {sklearn_full:8.2f} s{note}")
    peer_total = resample_full + netcal_full + sklearn_full
    print(f"peer  total (resample + netcal + sklearn):      {peer_total:8.2f} s{note}")
    print(f"speed-up, ECE:         {(resample_full + netcal_full) / t_table:8.1f}x "
          "(netcal loop incl. resampling / calibration_table)")
    print(f"speed-up, reliability: {(resample_full + sklearn_full) / t_curve:8.1f}x "
          "(sklearn loop incl. resampling / reliability_curve)")
    print(f"speed-up, both:        {peer_total / ours:8.1f}x")

    ours_reps = our_ece_replicates(y, p, subgroup, patient, peer_reps, args.bins, args.seed)
    diff = float(np.max(np.abs(ours_reps - peer_values)))
    print(f"max |ECE replicate difference| ours vs netcal on the {peer_reps} shared "
          f"replicates: {diff:.2e}")
    worst = table.sort_values("estimate").iloc[-1]
    print(f"largest subgroup ECE: {worst['group']} {worst['estimate']:.4f} "
          f"[{worst['ci_low']:.4f}, {worst['ci_high']:.4f}]; reliability rows: {len(curve)}")
    print(f"peak resident memory of the process: {peak_rss_mib():,.0f} MiB")
    # netcal clips p to [eps, 1 - eps] and bins left-closed; continuous data never hit an edge.
    if diff > 1e-9:
        print("ERROR: ours and netcal disagree on the same draws", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
