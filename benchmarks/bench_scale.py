"""Benchmark: a large generated study through the hashing audit and a robustness run,
in-process against a Dask cluster.

Steps, each timed on every backend:

1. **leakage hashing audit**: every image file is decoded and hashed (DCT perceptual hash
   and content SHA-256) in work units of 256 files
   (:func:`claimladder.features.hash_image_files`), then exact and near-duplicate pairs
   are searched and the pairs crossing a fitting and a test partition counted (within
   ``--max-distance`` bits, default 2: the demo's synthetic radiographs are so alike that
   at the leakage check's 8 bits about 8 % of all pairs match, a pair list growing as
   n^2 that would dominate a 100,000-image run);
2. **robustness run**: :func:`claimladder.robustness.stress_test` of the demo model on
   the internal-test and external images, 3 perturbations (Gaussian noise, blur,
   bias field) at severities 1-3 (plus the clean images), perturbation + inference in
   units of 256 images.

Backends: in-process (``SerialExecutor``) and a Dask cluster: by default a
``LocalCluster`` of ``--workers`` single-threaded worker processes, or the cluster at
``--scheduler`` (e.g. ``tcp://10.0.0.5:8786``). Peak memory is the largest resident set
size of this process plus its child processes (the local workers), sampled every 50 ms.
Both backends must give identical hashes and stress-test tables; the script checks it.

The study is :func:`claimladder.datasets.make_demo_study` at ``--image-size`` pixels
(default 64, to keep the in-memory robustness set small: 16 KiB per image), with
``--n`` images (default 100,000, about 58,000 patients); generating it is not timed.

Usage::

    python benchmarks/bench_scale.py                       # 100,000 images, LocalCluster(2)
    python benchmarks/bench_scale.py --n 2000              # a quick run
    python benchmarks/bench_scale.py --n 100000 --scheduler tcp://10.0.0.5:8786 \\
        --study-dir /shared/bench-study                      # a multi-machine cluster

On a multi-machine cluster, start ``dask scheduler`` on one machine and ``dask worker
tcp://SCHEDULER:8786 --nthreads 1 --nworkers N`` on each of the others, every one with the
same claimladder version installed, and put ``--study-dir`` on a file system all of them
mount at the same path (the workers read the image files themselves).
"""

from __future__ import annotations

import argparse
import os
import resource
import threading
import time
from pathlib import Path

import numpy as np

from claimladder.datasets import fit_demo_model, make_demo_study
from claimladder.features import exact_duplicate_pairs, hash_image_files, near_duplicate_pairs
from claimladder.ladder import load_study, load_study_data
from claimladder.parallel import DaskExecutor, SerialExecutor
from claimladder.robustness import stress_test

PERTURBATIONS = ["gaussian_noise", "gaussian_blur", "bias_field"]
SEVERITIES = (0, 1, 2, 3)


class PeakMemory:
    """Peak RSS of this process and its descendants, sampled in a thread."""

    def __init__(self, interval: float = 0.05) -> None:
        import psutil

        self._psutil = psutil
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        me = self._psutil.Process()
        total = me.memory_info().rss
        for child in me.children(recursive=True):
            try:
                total += child.memory_info().rss
            except self._psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self.peak = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def hashing_audit(paths, partition, kinds, executor, max_distance):
    table = hash_image_files(paths, executor=executor)
    ok = table["error"].isna().to_numpy()
    rows = np.flatnonzero(ok)
    near = near_duplicate_pairs(table["phash"].to_numpy()[ok], max_distance=max_distance)
    exact = exact_duplicate_pairs(table["content_sha256"].to_numpy()[ok].astype(str))
    fit = {"development", "calibration"}
    crossing = 0
    for pairs in (exact, near):
        a = partition[rows[pairs["i"].to_numpy()]]
        b = partition[rows[pairs["j"].to_numpy()]]
        ka, kb = np.array([kinds.get(x, "") for x in a]), np.array([kinds.get(x, "") for x in b])
        crossing += int(((np.isin(ka, list(fit)) & ~np.isin(kb, list(fit)) & (kb != ""))
                         | (np.isin(kb, list(fit)) & ~np.isin(ka, list(fit)) & (ka != ""))).sum())
    return table, {"hashed": int(ok.sum()), "exact_pairs": len(exact), "near_pairs": len(near),
                   "crossing_pairs": crossing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="images in the study")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster workers")
    parser.add_argument("--scheduler", default=None,
                        help="Dask scheduler address (default: a LocalCluster)")
    parser.add_argument("--study-dir", type=Path, default=None,
                        help="where to generate the study (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-distance", type=int, default=2,
                        help="near-duplicate Hamming radius (the synthetic images are alike: "
                             "at 8 bits about 8%% of all pairs match, which grows as n^2)")
    args = parser.parse_args()

    import tempfile

    folder = args.study_dir or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    t0 = time.perf_counter()
    n_patients = max(round(args.n / 1.73), 20)
    demo = make_demo_study(folder / "study", n_patients=n_patients, rng=args.seed,
                           image_size=args.image_size)
    model, _ = fit_demo_model(folder / "study", train_image_ids=demo.development_ids,
                              rng=args.seed)  # also writes the predictions the study names
    study = load_study(demo.study_path)
    data = load_study_data(study)
    cohort, parts = data.cohort, data.partitions
    root = study.images_root
    paths = [str(root / p) for p in cohort.column("path").astype(str)]
    partition = np.full(cohort.n_images, "", dtype=object)
    for name, mask in parts.masks.items():
        partition[mask] = name
    kinds = dict(parts.kinds)
    test_rows = np.flatnonzero(np.isin(partition, [n for n, k in kinds.items()
                                                   if k in ("internal_test", "external")]))
    print(f"study: {demo.n_images} images ({cohort.n_images} included, {test_rows.size} in "
          f"test partitions), {args.image_size}x{args.image_size}, generated and model fit in "
          f"{time.perf_counter() - t0:.0f} s at {folder}")
    print(f"load average before: {os.getloadavg()}; cpus: {os.cpu_count()}")

    backends = [("in-process", lambda: SerialExecutor())]
    label = (f"dask {args.scheduler}" if args.scheduler else
             f"dask LocalCluster({args.workers})")
    backends.append((label, lambda: DaskExecutor(args.scheduler, workers=args.workers)))
    results = {}
    for name, make in backends:
        t_start = time.perf_counter()
        executor = make()
        startup = time.perf_counter() - t_start
        try:
            with PeakMemory() as mem_hash:
                t = time.perf_counter()
                hashes, audit = hashing_audit(paths, partition, kinds, executor,
                                              args.max_distance)
                t_hash = time.perf_counter() - t
            with PeakMemory() as mem_robust:
                t = time.perf_counter()
                images, _ = load_study_data(study, executor=executor).images()
                shapes = {images[i].shape for i in test_rows if images[i] is not None}
                rows = [i for i in test_rows if images[i] is not None]
                x = np.stack([images[i] for i in rows]).astype(np.float32)
                del images
                t_read = time.perf_counter() - t
                t = time.perf_counter()
                result = stress_test(model.predict_proba, x, cohort.y_true[rows].astype(int),
                                     groups=cohort.patient_ids[rows],
                                     perturbations=PERTURBATIONS, severities=SEVERITIES,
                                     rng=args.seed, executor=executor)
                t_robust = time.perf_counter() - t
        finally:
            executor.close()
        results[name] = (hashes, result.table)
        print(f"\n[{name}] start {startup:.1f} s")
        print(f"  hashing audit : {t_hash:8.1f} s  ({audit['hashed']} images, "
              f"{audit['hashed'] / t_hash:.0f} img/s; {audit['exact_pairs']} exact + "
              f"{audit['near_pairs']} near pairs, {audit['crossing_pairs']} crossing); "
              f"peak RSS {mem_hash.peak / 2**20:.0f} MiB")
        print(f"  read images   : {t_read:8.1f} s  ({len(rows)} test images, shapes {shapes})")
        print(f"  robustness    : {t_robust:8.1f} s  ({len(rows)} images x "
              f"{len(PERTURBATIONS)} perturbations x {len(SEVERITIES) - 1} severities + clean "
              f"= {len(rows) * (1 + len(PERTURBATIONS) * (len(SEVERITIES) - 1))} scored, "
              f"AUROC clean {result.clean.value:.3f}); peak RSS "
              f"{max(mem_robust.peak, mem_hash.peak) / 2**20:.0f} MiB")
    (h0, t0_), (h1, t1_) = results.values()
    same = h0.equals(h1) and t0_.equals(t1_)
    print(f"\nidentical hashes and stress-test tables on both backends: {same}")
    print(f"driver max RSS over the run: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; "
          f"load average after: {os.getloadavg()}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
