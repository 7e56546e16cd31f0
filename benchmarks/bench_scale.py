"""Benchmark: a large generated study through the leakage audit and a robustness run,
in-process against a Dask cluster, with peak memory.

Steps, each timed on every backend:

1. **leakage audit** (the pixel checks of rung 1): one streamed pass of work units of
   64 images (:func:`claimladder.ladder._pixels.cohort_pixel_summaries`: decoding, DCT
   perceptual and content hashes, marker and text detection, OCR of the text regions
   when Tesseract is installed, image statistics and border features), then
   ``leakage.near_duplicates`` (candidates within ``--max-distance`` bits, default 0:
   the demo's synthetic radiographs are so alike that the candidate pairs grow as n^2
   -- at 2,700 images, 2,511 pairs within 2 bits and 21,619 within 4, every one
   confirmed on pixels at about 1.4 ms -- which would dominate a 100,000-image run;
   pixel confirmation reads only the candidates' files),
   ``leakage.pixel_markers`` and ``leakage.burned_in_text`` on the summaries;
2. **robustness run**: :func:`claimladder.robustness.stress_test` of the demo model on
   the internal-test and external images given as files
   (:class:`claimladder.cohort.ImageFiles`: each unit decodes its own 256 images), 3
   perturbations (Gaussian noise, blur, bias field) at severities 1-3 plus the clean
   images.

Backends: in-process (``SerialExecutor``) and a Dask cluster: by default a
``LocalCluster`` of ``--workers`` single-threaded worker processes, or the cluster at
``--scheduler`` (e.g. ``tcp://10.0.0.5:8786``). Peak memory is the largest resident set
size of this process plus its child processes (the local workers), sampled every 50 ms,
and its increase over the start of the step (generating the study and fitting the
model leave several GB resident at 100,000 images).
Both backends must give identical findings and stress-test tables; the script checks it.

The study is :func:`claimladder.datasets.make_demo_study` at ``--image-size`` pixels
(default 64), with ``--n`` images (default 100,000, about 58,000 patients); generating
it and fitting the demo model are not timed.

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

from claimladder.cohort import ImageFiles
from claimladder.datasets import fit_demo_model, make_demo_study
from claimladder.ladder import load_study, load_study_data
from claimladder.ladder._pixels import cohort_pixel_summaries
from claimladder.leakage import check_burned_in_text, check_near_duplicates, check_pixel_markers
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
        self.start = self.peak = 0
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
        self.start = self.peak = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def leakage_audit(cohort, root, masks, kinds, executor, max_distance):
    summary = cohort_pixel_summaries(cohort, root, executor=executor)
    files = ImageFiles(["" if d is None else str(root / str(p))
                        for p, d in zip(cohort.column("path"), summary.digests)])
    site = cohort.column("site").astype(str).to_numpy()
    findings = [
        check_near_duplicates(cohort, files, masks, kinds, max_distance=max_distance,
                              hashes=summary.phash, digests=summary.digests),
        check_pixel_markers(cohort, summary.markers, masks, kinds, site=site),
        check_burned_in_text(cohort, files, masks, kinds, regions=summary.regions, site=site,
                             counts=summary.ocr),
    ]
    return summary, findings


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
    parser.add_argument("--max-distance", type=int, default=0,
                        help="near-duplicate Hamming radius (the synthetic images are alike: "
                             "the candidate pairs grow as n^2 beyond 0 bits)")
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
    masks, kinds = dict(parts.masks), dict(parts.kinds)
    partition = np.full(cohort.n_images, "", dtype=object)
    for name, mask in masks.items():
        partition[mask] = name
    test_rows = np.flatnonzero(np.isin(partition, [n for n, k in kinds.items()
                                                   if k in ("internal_test", "external")]))
    test_files = data.image_files(test_rows)
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
            with PeakMemory() as mem_audit:
                t = time.perf_counter()
                summary, findings = leakage_audit(cohort, root, masks, kinds, executor,
                                                  args.max_distance)
                t_audit = time.perf_counter() - t
            with PeakMemory() as mem_robust:
                t = time.perf_counter()
                result = stress_test(model.predict_proba, test_files,
                                     cohort.y_true[test_rows].astype(int),
                                     groups=cohort.patient_ids[test_rows],
                                     perturbations=PERTURBATIONS, severities=SEVERITIES,
                                     rng=args.seed, executor=executor)
                t_robust = time.perf_counter() - t
        finally:
            executor.close()
        outcome = [(f.check, f.status.value, f.message) for f in findings]
        results[name] = (summary.digests, summary.phash.tolist(), outcome, result.table)
        n_read = sum(d is not None for d in summary.digests)
        print(f"\n[{name}] start {startup:.1f} s")
        print(f"  leakage audit : {t_audit:8.1f} s  ({n_read} images, {n_read / t_audit:.0f} "
              f"img/s; OCR {'on' if summary.ocr is not None else 'off'}); peak RSS "
              f"{mem_audit.peak / 2**20:.0f} MiB, "
              f"+{(mem_audit.peak - mem_audit.start) / 2**20:.0f} MiB over the start")
        for check, status, message in outcome:
            print(f"    {check}: {status}: {message[:150]}")
        n_scored = test_rows.size * (1 + len(PERTURBATIONS) * (len(SEVERITIES) - 1))
        print(f"  robustness    : {t_robust:8.1f} s  ({test_rows.size} images x "
              f"{len(PERTURBATIONS)} perturbations x {len(SEVERITIES) - 1} severities + clean "
              f"= {n_scored} scored, {n_scored / t_robust:.0f} img/s, AUROC clean "
              f"{result.clean.value:.3f}); peak RSS {mem_robust.peak / 2**20:.0f} MiB, "
              f"+{(mem_robust.peak - mem_robust.start) / 2**20:.0f} MiB over the start")
    (d0, h0, f0, t0_), (d1, h1, f1, t1_) = results.values()
    same = d0 == d1 and h0 == h1 and f0 == f1 and t0_.equals(t1_)
    print(f"\nidentical summaries, findings and stress-test tables on both backends: {same}")
    print(f"driver max RSS over the run: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; "
          f"load average after: {os.getloadavg()}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
