"""The demo's reader study and its declared deployment population.

:func:`make_demo_readings` simulates a fully crossed reader study on the
demo's internal test partition and external site C: five readers of different
skill read every case without and then with the demo model's score shown
(``unaided`` / ``aided``), giving a 0-100 confidence score, a call (score >=
50) and a reading time. It needs the model's ``predictions.csv``, so
:func:`~claimladder.datasets.fit_demo_model` writes it right after the
predictions; ``study.toml`` declares it (``[readers]``), as it declares the
predictions before they exist.

The reading model (latent scale, one draw per reader, case and modality)
-------------------------------------------------------------------------
* A reader sees a lesion through its conspicuity (``planted_truth.csv``):
  ``evidence = lesion * (0.5 + 3 * conspicuity)``, so subtle lesions (and the
  planted low-contrast lesions of patients aged 70 or more) are hard.
* Reader ``j`` of skill ``s_j`` (0.55, 0.7, 0.85, 1.0, 1.15) reads
  ``u = s_j * evidence + case + noise`` unaided (case effect N(0, 0.4^2) shared
  by all readers, noise N(0, 1)).
* With the aid the reader adds the aid's log likelihood ratio,
  ``w_j * (logit(score) - logit(mean score))`` (the score against the aid's
  usual output, so a recalibration of the model barely changes it), to a
  re-read (re-read noise N(0, 0.35^2)); weaker readers rely on it more
  (``w_j`` 0.9 to 0.5). The aid therefore helps where the model is right and
  misleads where it is confidently wrong.
* Cases: the included internal-test images (sites A, B) and the included
  images of external site C, whose scanner prints the corner marker on 14 % of
  images regardless of the label. The shortcut-prone model scores those
  marker-bearing negatives high, and it misses many site-C lesions.

Measured at the default size (``make_demo_study(rng=0)``, ``fit_demo_model(rng=0)``,
which seeds the readings; readers' calls against the planted truth):

========================== ================================ =================================
                           planted study                    clean study
========================== ================================ =================================
cases read (positive)      551 (99 by the cohort label)     534 (135)
reader-average AUROC       0.791 unaided, 0.862 aided       0.850, 0.962
(cohort labels)            (OR-Hillis RRRC difference       (0.112 [0.036, 0.188])
                           0.071 [0.019, 0.123])
marker-bearing negatives   19 % unaided, 32 % aided         --
called positive
other negatives called     19 %, 11 %                       18 %, 7 %
subtle lesions at sites A  52 %, 61 %                       62 %, 85 %
and B (conspicuity below
the median) called
subtle lesions at site C   33 %, 16 % (the model misses     66 %, 74 %
called                     them)
clear lesions called       76 %, 91 %                       81 %, 98 %
readers misled by a        20 cases, 4 of them marker-      16 cases, none with a marker
confidently wrong model    bearing negatives
mean reading time          44.7 s unaided, 42.3 s aided     44.8 s, 41.6 s
========================== ================================ =================================

So in both studies the aid raises the readers' AUROC and lifts subtle lesions
where the model sees them; in the planted study it also misleads: aided
readers call a third of the marker-bearing negatives positive (against 11 %
of other negatives), and they drop site-C lesions the model misses.

Declared deployment population
------------------------------
The planted study declares an emergency-department population that differs
from the evaluated cohort on purpose: prevalence 8 % (the test sets hold
23 %), older patients (age mean 70, sd 14), more portable AP views (60 %) and
a fourth scanner vendor ("Veridian Radiography") that no evaluated image comes
from; its sex mix is the cohort's own. The clean study declares the evaluated
cohort's own prevalence, age, sex, view and vendors (rounded): nothing to
report.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from .._core import RngLike, atomic_write_text, check_rng, spawn

__all__ = ["READER_TABLE", "deployment_toml", "make_demo_readings", "readers_toml"]

#: File name of the demo's reader table (relative to the study folder).
READER_TABLE = "readers.csv"

_SKILL = (0.55, 0.70, 0.85, 1.00, 1.15)
_RELIANCE = (0.90, 0.80, 0.70, 0.60, 0.50)
_CASE_SD = 0.4
_REREAD_SD = 0.35
_AID_WEIGHT = 1.0
_BIAS = 1.0
_TIME_UNAIDED, _TIME_AGREE, _TIME_DISAGREE = 45.0, 38.0, 55.0
_TIME_SHAPE = 8.0
_VIEWS = ("PA", "AP")
#: Besides the internal test images, the readers read the external site whose scanner
#: also prints a corner marker (unrelated to the label there): its marker-bearing
#: negatives are where the shortcut-prone model is confidently wrong.
_EXTERNAL_READ_SITE = "C"


def _included(cohort: pd.DataFrame) -> pd.Series:
    """The cohort rules of the demo's study.toml (adult, frontal, good quality)."""
    age = pd.to_numeric(cohort["age"], errors="coerce")
    return ((age >= 18).fillna(False).astype(bool) & cohort["view"].isin(_VIEWS)
            & (cohort["quality"] != "poor"))


def _evaluated(cohort: pd.DataFrame) -> pd.Series:
    """Included rows of the demo's test partitions (internal test, sites C and D)."""
    internal = cohort["site"].isin(["A", "B"]) & (cohort["split"] == "test")
    return _included(cohort) & (internal | cohort["site"].isin(["C", "D"]))


def make_demo_readings(study_dir: str | os.PathLike[str], *, rng: RngLike = 0) -> Path | None:
    """Simulate the demo's reader study and write the table ``study.toml`` declares.

    Parameters
    ----------
    study_dir : str or path-like
        A folder written by :func:`make_demo_study` holding ``predictions.csv``.
    rng : int, numpy.random.Generator or None, default 0
        Seed; the same seed and files give a byte-identical table.

    Returns
    -------
    pathlib.Path or None
        The reader table (``case_id, reader_id, modality, score, decision,
        time_s``; cases are the included internal-test image ids), or None
        when ``study.toml`` declares no ``[readers] table`` or the folder has
        no ``planted_truth.csv`` (not a demo study).

    Examples
    --------
    >>> import tempfile
    >>> import pandas as pd
    >>> from claimladder.datasets import fit_demo_model, make_demo_study
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     demo = make_demo_study(tmp, n_patients=60, image_size=64)
    ...     _ = fit_demo_model(tmp, train_image_ids=demo.development_ids)
    ...     table = pd.read_csv(make_demo_readings(tmp))
    >>> sorted(table["modality"].unique()), table["reader_id"].nunique()
    (['aided', 'unaided'], 5)
    """
    root = Path(study_dir)
    spec = tomllib.loads((root / "study.toml").read_text(encoding="utf-8"))
    table_name = spec.get("readers", {}).get("table")
    truth_path = root / "planted_truth.csv"
    if not table_name or not truth_path.is_file():
        return None
    cohort = pd.read_csv(root / spec["data"]["cohort"], dtype={"image_id": str})
    truth = pd.read_csv(truth_path, dtype={"image_id": str}).set_index("image_id")
    predictions = pd.read_csv(root / spec["data"]["predictions"], dtype={"image_id": str})
    score = predictions.set_index("image_id")["score"]
    internal = cohort["site"].isin(["A", "B"]) & (cohort["split"] == "test")
    read = _included(cohort) & (internal | (cohort["site"] == _EXTERNAL_READ_SITE))
    ids = cohort.loc[read, "image_id"].to_numpy()
    lesion = truth.loc[ids, "lesion"].to_numpy(dtype=float)
    conspicuity = truth.loc[ids, "conspicuity"].fillna(0.0).to_numpy(dtype=float)
    model = np.clip(score.loc[ids].to_numpy(dtype=float), 0.01, 0.99)
    # Readers weigh the aid's score against its usual output (the mean score they see):
    # its log likelihood ratio, which a recalibration of the model leaves nearly unchanged.
    prior = float(model.mean())
    logit = np.log(model / (1 - model)) - np.log(prior / (1 - prior))

    r_case, r_read, r_reread, r_time = spawn(check_rng(rng), 4)
    n = len(ids)
    evidence = lesion * (0.5 + 3.0 * conspicuity)
    case = r_case.normal(scale=_CASE_SD, size=n)
    skill = np.asarray(_SKILL)[:, None]
    reliance = np.asarray(_RELIANCE)[:, None]
    unaided = skill * evidence + case + r_read.normal(size=(len(_SKILL), n))
    aided = (unaided + r_reread.normal(scale=_REREAD_SD, size=unaided.shape)
             + _AID_WEIGHT * reliance * logit)
    frames = []
    call_unaided = None
    for modality, latent in (("unaided", unaided), ("aided", aided)):
        points = np.round(100.0 / (1.0 + np.exp(-(latent - _BIAS))))
        call = (points >= 50).astype(int)
        if modality == "unaided":
            call_unaided = call
            mean = np.full(call.shape, _TIME_UNAIDED)
        else:
            agrees = call_unaided == (model >= 0.5)[None, :]
            mean = np.where(agrees, _TIME_AGREE, _TIME_DISAGREE)
        time = r_time.gamma(_TIME_SHAPE, mean / _TIME_SHAPE)
        for j in range(len(_SKILL)):
            frames.append(pd.DataFrame({
                "case_id": ids, "reader_id": f"R{j + 1}", "modality": modality,
                "score": points[j].astype(int), "decision": call[j],
                "time_s": np.round(time[j], 1),
            }))
    out = pd.concat(frames, ignore_index=True)
    target = root / table_name
    atomic_write_text(target, out.to_csv(index=False, lineterminator="\n"))
    return target


def readers_toml() -> str:
    """The ``[readers]`` section of the demo's ``study.toml``."""
    return f'''
[readers]
table = "{READER_TABLE}"
modalities = ["unaided", "aided"]
# The demo model is Platt-calibrated: when wrong it rarely exceeds 0.9, so "confidently
# positive" starts at 0.7 here.
confident_high = 0.7
'''


def deployment_toml(cohort: pd.DataFrame, clean: bool) -> str:
    """The ``[deployment]`` section: a mismatched ED population, or (clean) the cohort's own.

    Parameters
    ----------
    cohort : pandas.DataFrame
        The demo's ``cohort.csv`` table.
    clean : bool
        Whether this is the clean control.
    """
    rows = cohort.loc[_evaluated(cohort)]

    def shares(column: str) -> str | None:
        p = rows[column].dropna().astype(str).value_counts(normalize=True).sort_index()
        if p.empty:
            return None
        values = np.round(p.to_numpy(), 3)
        values[-1] = round(1.0 - values[:-1].sum(), 3)
        return "{" + ", ".join(f"{k} = {v:g}" for k, v in zip(p.index, values, strict=True)) + "}"

    sex = shares("sex")
    age = pd.to_numeric(rows["age"], errors="coerce").dropna()
    if not clean:
        lines = [
            "[deployment]",
            ('description = "Adult emergency-department chest radiographs: older, more '
             'portable AP"'),
            "prevalence = 0.08",
            ('scanner_vendors = ["Lumetra Medical", "Orison Imaging", "Kestrel Systems", '
             '"Veridian Radiography"]'),
            "[deployment.numeric]",
            "age = {mean = 70.0, sd = 14.0}",
            "[deployment.categories]",
            "view = {PA = 0.4, AP = 0.6}",
        ]
        if sex is not None:  # the cohort's own sex mix: not a planted mismatch
            lines.append(f"sex = {sex}")
        return "\n" + "\n".join(lines) + "\n"
    # Tiny demos may leave a statistic undefined; such keys are left out, not written as nan.
    lines = ["[deployment]", 'description = "The evaluated population itself (clean control)"']
    prevalence = round(float(rows["label"].mean()), 3) if len(rows) else 0.0
    if 0 < prevalence < 1:
        lines.append(f"prevalence = {prevalence:g}")
    vendors = sorted(rows["manufacturer"].dropna().astype(str).unique())
    if vendors:
        lines.append("scanner_vendors = [" + ", ".join(f'"{v}"' for v in vendors) + "]")
    if age.size > 1 and age.std(ddof=1) > 0:
        lines += ["[deployment.numeric]",
                  f"age = {{mean = {age.mean():.1f}, sd = {age.std(ddof=1):.1f}}}"]
    categories = [f"{name} = {value}" for name, value in (("sex", sex), ("view", shares("view")))
                  if value is not None]
    if categories:
        lines += ["[deployment.categories]", *categories]
    return "\n" + "\n".join(lines) + "\n"
