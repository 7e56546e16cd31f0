"""Benchmark: batch perturbations against TorchIO, and a whole stress test.

Part 1 times, in one process and on the same images,

* ours: the deterministic perturbation at a fixed setting applied to the whole batch
  (``GaussianNoise(sigma=...)(batch, rng=0)``), and its random counterpart (parameters
  drawn per image, e.g. ``RandomGaussianNoise(...)(batch, rng=0)``);
* TorchIO (the version installed), used as its users do: one ``tio.Subject`` per image
  holding a ``ScalarImage`` with the image's own tensor (``(1, H, W, 1)`` for 2D,
  ``(1, D, H, W)`` for 3D), passed through the ``Random*`` transform with a degenerate
  range at the same setting.

on 512 images of 128 x 128 and 64 volumes of 64^3 (float32, smooth phantoms with noise),
and prints the ratio TorchIO time / our time per transform. Motion differs in model
(TorchIO resamples the image after a few rigid movements; ours applies the phase ramps
of translations to random k-space lines), so its ratio compares what each library does
for "motion", not the same arithmetic.

Everything runs on one thread (``threadpoolctl`` for BLAS, ``torch.set_num_threads(1)``)
so that the machine's load from other processes hurts both sides alike; the load average
is printed before and after. Each timing is the best of ``--repeats`` runs (TorchIO's of
``--torchio-repeats``).

Part 2 runs :func:`claimladder.robustness.stress_test` with every built-in image
perturbation at severities 0-5 on the demo study's images (``make_demo_study``) scored by
the demo model (``fit_demo_model``), and reports images per second and where the time goes.

Usage::

    python benchmarks/bench_perturbations.py                  # both parts
    python benchmarks/bench_perturbations.py --part 1 --torchio-subset 128
    python benchmarks/bench_perturbations.py --part 2 --patients 300
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def phantoms(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Smooth blobs on a background, with noise: images spanning about [0, 1]."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    out = np.empty((n, *shape), dtype=np.float32)
    for i in range(n):
        centre = rng.uniform(-0.3, 0.3, len(shape))
        r2 = sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True))
        out[i] = 0.1 + 0.7 * np.exp(-r2 / rng.uniform(0.2, 0.5)) \
            + 0.02 * rng.standard_normal(shape)
    return out


def best_of(fn, repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def transforms_2d_3d():
    """(name, ours deterministic, ours random, torchio factory) per transform."""
    import torchio as tio

    from claimladder import robustness as rb

    log_gamma = math.log(1.3)
    return [
        ("noise", rb.GaussianNoise(sigma=0.04), rb.RandomGaussianNoise(sigma=(0.0, 0.08)),
         lambda: tio.RandomNoise(std=(0.04, 0.04))),
        ("blur", rb.GaussianBlur(sigma=1.5), rb.RandomGaussianBlur(sigma=(1.0, 2.0)),
         lambda: tio.RandomBlur(std=(1.5, 1.5))),
        ("gamma", rb.Gamma(gamma=1.3), rb.RandomGamma(log_gamma=(-0.3, 0.3)),
         lambda: tio.RandomGamma(log_gamma=(log_gamma, log_gamma))),
        ("bias_field", rb.BiasField(strength=0.3, order=3),
         rb.RandomBiasField(strength=(0.0, 0.5), order=3),
         lambda: tio.RandomBiasField(coefficients=0.3, order=3)),
        ("motion", rb.Motion(fraction=0.2, shift=0.03),
         rb.RandomMotion(fraction=(0.0, 0.3), shift=(0.0, 0.05)),
         lambda: tio.RandomMotion(degrees=5, translation=5, num_transforms=2)),
        ("ghosting", rb.Ghosting(intensity=0.5, num_ghosts=4),
         rb.RandomGhosting(intensity=(0.0, 0.5), num_ghosts=(4, 10)),
         lambda: tio.RandomGhosting(num_ghosts=(4, 4), intensity=(0.5, 0.5), axes=(0,))),
        ("spike", rb.Spike(intensity=0.1, n_spikes=1),
         rb.RandomSpike(intensity=(0.0, 0.2)),
         lambda: tio.RandomSpike(num_spikes=1, intensity=(0.5, 0.5))),
    ]


def run_torchio(factory, images: np.ndarray, spatial_dims: int) -> None:
    import torch
    import torchio as tio

    transform = factory()
    for image in images:
        tensor = torch.from_numpy(image[None, ..., None] if spatial_dims == 2 else image[None])
        transform(tio.Subject(image=tio.ScalarImage(tensor=tensor)))


TARGETS_2D = {"noise": 3.0, "blur": 3.0, "gamma": 3.0, "bias_field": 3.0, "motion": 1.5,
              "ghosting": 1.5, "spike": 1.5}


def part1(args) -> None:
    import torch
    import torchio
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, torchio {torchio.__version__}, numpy {np.__version__}; "
          f"{os.cpu_count()} CPUs; load average before: "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    sets = [("2D", phantoms(args.images, (128, 128), 0), 2),
            ("3D", phantoms(args.volumes, (64, 64, 64), 1), 3)]
    with threadpool_limits(limits=1):
        for label, images, dims in sets:
            subset = images[: args.torchio_subset] if args.torchio_subset else images
            scale = len(images) / len(subset)
            print(f"\n{label}: {len(images)} x {images.shape[1:]} float32"
                  + (f" (TorchIO timed on {len(subset)} and scaled x{scale:g})"
                     if scale != 1 else ""))
            print(f"{'transform':<11} {'ours':>9} {'ours rand':>10} {'TorchIO':>9} "
                  f"{'ratio':>7} {'ratio rand':>11}  target")
            for name, ours, ours_random, factory in transforms_2d_3d():
                t_ours = best_of(lambda o=ours, x=images: o(x, rng=0), args.repeats)
                t_rand = best_of(lambda o=ours_random, x=images: o(x, rng=0), args.repeats)
                t_tio = best_of(lambda f=factory, x=subset, d=dims: run_torchio(f, x, d),
                                args.torchio_repeats) * scale
                target = TARGETS_2D[name] if dims == 2 else 1.0
                ratio, ratio_rand = t_tio / t_ours, t_tio / t_rand
                verdict = "ok" if min(ratio, ratio_rand) >= target else "MISSED"
                print(f"{name:<11} {t_ours:>8.3f}s {t_rand:>9.3f}s {t_tio:>8.3f}s "
                      f"{ratio:>6.1f}x {ratio_rand:>10.1f}x  >= {target:g}x {verdict}")
    print(f"\nload average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


def part2(args) -> None:
    import pandas as pd

    from claimladder.datasets import fit_demo_model, make_demo_study
    from claimladder.io import read_image
    from claimladder.models import load_model
    from claimladder.robustness import DEFAULT_PERTURBATIONS, PERTURBATIONS, stress_test

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        study = make_demo_study(root, n_patients=args.patients, rng=0)
        cohort = pd.read_csv(study.cohort_path, dtype={"image_id": str, "patient_id": str})
        images = np.stack([read_image(root / p) for p in cohort["path"]]).astype(np.float32)
        print(f"\ndemo study: {len(images)} images 128 x 128 from {args.patients} patients "
              f"({time.perf_counter() - start:.1f}s to write and read)")
        demo_model, _ = fit_demo_model(root, train_image_ids=study.development_ids, rng=0)
    dev = cohort["image_id"].isin(study.development_ids).to_numpy()
    y = cohort["label"].to_numpy()
    test = ~dev
    print(f"model: the demo model (claimladder.datasets.fit_demo_model), fit on {dev.sum()} "
          f"development images; stress test on the other {test.sum()}")
    model = load_model(demo_model.predict_proba, batch_size=256)
    load_before = os.getloadavg()
    start = time.perf_counter()
    result = stress_test(model, images[test], y[test],
                         groups=cohort["patient_id"].to_numpy()[test],
                         perturbations=DEFAULT_PERTURBATIONS, rng=0)
    total = time.perf_counter() - start
    n_scored = test.sum() * (1 + 5 * len(DEFAULT_PERTURBATIONS))
    print(f"stress test: {len(DEFAULT_PERTURBATIONS)} perturbations x 5 severities + clean = "
          f"{n_scored} images perturbed and scored in {total:.2f}s -> "
          f"{n_scored / total:.0f} images/s (load average "
          f"{load_before[0]:.2f} -> {os.getloadavg()[0]:.2f})")
    timings = result.timings
    print("  where the time goes: " + ", ".join(
        f"{k} {v:.2f}s ({v / total:.0%})" for k, v in timings.items() if k != "total")
        + f", other {total - sum(v for k, v in timings.items() if k != 'total'):.2f}s")
    per = {}
    for name in DEFAULT_PERTURBATIONS:
        p = PERTURBATIONS[name]
        batch = images[test]
        per[name] = best_of(
            lambda p=p, x=batch: [p.at_severity(s)(x, rng=0) for s in range(1, 6)], 1)
    slowest = sorted(per.items(), key=lambda kv: -kv[1])
    print("  perturbation time per perturbation (5 severities): " + ", ".join(
        f"{k} {v:.2f}s" for k, v in slowest))
    start = time.perf_counter()
    stress_test(model, images[test], y[test], groups=cohort["patient_id"].to_numpy()[test],
                perturbations=DEFAULT_PERTURBATIONS, rng=0)
    print(f"  rerun with the same seed (every prediction from the cache): "
          f"{time.perf_counter() - start:.2f}s")
    boundaries = {k: v for k, v in result.boundaries.items()}
    print(f"  clean AUROC {result.clean.format()}; failure boundaries: {boundaries}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["1", "2", "both"], default="both")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--volumes", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--torchio-repeats", type=int, default=1)
    parser.add_argument("--torchio-subset", type=int, default=0,
                        help="time TorchIO on this many images and scale (0: all)")
    parser.add_argument("--patients", type=int, default=300)
    args = parser.parse_args()
    if args.part in ("1", "both"):
        part1(args)
    if args.part in ("2", "both"):
        part2(args)


if __name__ == "__main__":
    main()
