"""Splitters that never put a patient on both sides, in the scikit-learn shape.

Each splitter has ``split(X, y=None, groups=None, ...)`` yielding ``(train, test)``
arrays of row positions and ``get_n_splits``, so it can be passed as ``cv=`` where
scikit-learn accepts a cross-validator. Extra per-row vectors that scikit-learn
does not route (second stratum, patient ids of a site split, acquisition times)
are keyword-only arguments of ``split``.
"""

from __future__ import annotations

import warnings

from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._core import (
    RngLike,
    check_option,
    check_positive_int,
    check_probability,
    check_rng,
    did_you_mean,
)
from ..cohort import Cohort
from ._assign import assign_patients
from ._common import (
    EXCLUDED_PREFIX,
    STRADDLER_POLICIES,
    SplitError,
    as_labels,
    listing,
    n_rows,
    strata_codes,
    to_timedelta,
    to_timestamp,
)

__all__ = [
    "EXCLUDED_GAP",
    "EXCLUDED_STRADDLING",
    "TEST",
    "TRAIN",
    "GroupHoldout",
    "LeaveOneSiteOut",
    "PatientHoldout",
    "PatientKFold",
    "ScannerHoldout",
    "TemporalSplit",
    "nested_partitions",
]

#: Row roles returned by the ``assign`` methods of one-shot splitters.
TRAIN = "train"
TEST = "test"
EXCLUDED_GAP = EXCLUDED_PREFIX + "gap"
EXCLUDED_STRADDLING = EXCLUDED_PREFIX + "straddling"

Straddlers = Literal["test", "train", "drop", "raise"]


class _Splitter:
    """Shared ``get_params`` / ``__repr__`` in the scikit-learn style."""

    _param_names: tuple[str, ...] = ()

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters, as scikit-learn cross-validators report them."""
        return {name: getattr(self, name) for name in self._param_names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def _stratify_codes(
    y: Any, strata: Any, *, stratify: bool, n: int, owner: str
) -> np.ndarray:
    if not stratify:
        return strata_codes(strata, n=n) if strata is not None else strata_codes(n=n)
    if y is None:
        raise ValueError(
            f"{owner} was asked to stratify (stratify=True) but got y=None. "
            "Fix: pass the labels as y, or set stratify=False."
        )
    return strata_codes(y, strata, n=n) if strata is not None else strata_codes(y, n=n)


def _check_bins_filled(bins: np.ndarray, n_bins: int, *, owner: str, what: Sequence[str],
                       n_patients: int, sizes: Sequence[float]) -> None:
    filled = np.bincount(bins, minlength=n_bins)
    empty = [what[b] for b in range(n_bins) if filled[b] == 0 and sizes[b] > 0]
    if empty:
        raise SplitError(
            f"{owner}: the {', '.join(empty)} part(s) received no patient ({n_patients} "
            f"patients, requested shares {', '.join(f'{s:g}' for s in sizes)}). "
            "Fix: request larger shares or use a cohort with more patients."
        )


def _validate_size(value: Any, *, param: str, owner: str, allow_zero: bool = False) -> float:
    if allow_zero and not isinstance(value, bool) and isinstance(value, (int, float)) \
            and value == 0:
        return 0.0
    return check_probability(value, param=param, owner=owner)


class PatientKFold(_Splitter):
    """Stratified k-fold over patients: every patient's images land in one fold.

    Like scikit-learn's ``StratifiedGroupKFold`` with ``groups`` = patient ids, but
    the fold assignment is a deterministic function of ``rng`` and balances image
    counts per stratum (label, optionally crossed with a second stratum such as
    the site) across folds.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds, at least 2.
    stratify : bool, default=True
        Balance the label (``y``, and ``strata`` when given) across folds. When
        False, only the number of images per fold is balanced.
    rng : int, numpy.random.Generator or None, default=None
        Decides the order in which patients of equal size are placed. An int gives
        the same folds on every call of :meth:`split`; a Generator advances.

    Notes
    -----
    Patients are placed whole, largest first, each into the fold whose per-stratum
    image counts fall furthest short of the fold's share (squared deviation), ties
    going to the smallest fold. A patient whose images carry different labels
    counts towards each of them. See ``claimladder.splits._assign`` for the rule.

    Examples
    --------
    >>> import numpy as np
    >>> patients = np.repeat([f"p{i}" for i in range(6)], 2)
    >>> y = np.tile([0, 1], 6)
    >>> cv = PatientKFold(n_splits=3, rng=0)
    >>> [sorted(set(patients[test].tolist())) for _, test in cv.split(None, y, groups=patients)]
    [['p3', 'p4'], ['p0', 'p2'], ['p1', 'p5']]
    """

    _param_names = ("n_splits", "stratify", "rng")

    def __init__(self, n_splits: int = 5, *, stratify: bool = True, rng: RngLike = None):
        self.n_splits = check_positive_int(n_splits, param="n_splits", owner="PatientKFold",
                                           minimum=2)
        self.stratify = bool(stratify)
        self.rng = rng

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Number of folds."""
        return self.n_splits

    def fold_of(self, X: Any, y: Any = None, groups: Any = None, *,
                strata: Any = None) -> np.ndarray:
        """Test fold (0-based) of every row; rows of a patient share it.

        Parameters
        ----------
        X : array-like of shape (n_rows, ...), or None
            Only its length is used.
        y : array-like of shape (n_rows,), optional
            Labels; required when ``stratify=True``.
        groups : array-like of shape (n_rows,)
            Patient id of each row.
        strata : array-like of shape (n_rows,), optional
            Second stratum (e.g. site) crossed with the label.

        Returns
        -------
        numpy.ndarray of int, shape (n_rows,)
        """
        owner = "PatientKFold.split"
        n = n_rows(X, groups, owner)
        patients = as_labels(groups, n=n, param="groups", owner=owner, required="patient ids")
        codes = _stratify_codes(y, strata, stratify=self.stratify, n=n, owner=owner)
        n_patients = len(np.unique(patients))
        if self.n_splits > n_patients:
            raise SplitError(
                f"{owner}: n_splits={self.n_splits} exceeds the number of patients "
                f"({n_patients}); every fold needs at least one patient. "
                f"Fix: set n_splits <= {n_patients}."
            )
        shares = np.full(self.n_splits, 1.0 / self.n_splits)
        bins = assign_patients(patients, codes, shares, check_rng(self.rng))
        _check_bins_filled(bins, self.n_splits, owner=owner, n_patients=n_patients,
                           what=[f"fold {i + 1}" for i in range(self.n_splits)], sizes=shares)
        return bins

    def split(self, X: Any, y: Any = None, groups: Any = None, *,
              strata: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train, test)`` row positions for each fold.

        Parameters are those of :meth:`fold_of`. Validation happens when ``split``
        is called, not when the first fold is drawn.
        """
        folds = self.fold_of(X, y, groups, strata=strata)
        return iter([(np.flatnonzero(folds != k), np.flatnonzero(folds == k))
                     for k in range(self.n_splits)])


class PatientHoldout(_Splitter):
    """One patient-disjoint train / test split, stratified by label.

    Parameters
    ----------
    test_size : float, default=0.2
        Target share of the *images* in the test part, in (0, 1). Patients are
        placed whole, so the realized share is close to, not exactly, this value.
    stratify : bool, default=True
        Balance the label (and ``strata``) between the parts.
    rng : int, numpy.random.Generator or None, default=None
        See :class:`PatientKFold`.

    Examples
    --------
    >>> import numpy as np
    >>> patients = np.array([f"p{i // 2}" for i in range(20)])
    >>> y = np.array([i % 2 for i in range(20)])
    >>> train, test = next(PatientHoldout(test_size=0.2, rng=0).split(None, y, groups=patients))
    >>> len(test), set(patients[train]) & set(patients[test])
    (4, set())
    """

    _param_names = ("test_size", "stratify", "rng")

    def __init__(self, test_size: float = 0.2, *, stratify: bool = True, rng: RngLike = None):
        self.test_size = check_probability(test_size, param="test_size", owner="PatientHoldout")
        self.stratify = bool(stratify)
        self.rng = rng

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Always 1."""
        return 1

    def split(self, X: Any, y: Any = None, groups: Any = None, *,
              strata: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield one ``(train, test)`` pair of row positions.

        Parameters
        ----------
        X : array-like of shape (n_rows, ...), or None
            Only its length is used.
        y : array-like of shape (n_rows,), optional
            Labels; required when ``stratify=True``.
        groups : array-like of shape (n_rows,)
            Patient id of each row.
        strata : array-like of shape (n_rows,), optional
            Second stratum crossed with the label.
        """
        owner = "PatientHoldout.split"
        n = n_rows(X, groups, owner)
        patients = as_labels(groups, n=n, param="groups", owner=owner, required="patient ids")
        codes = _stratify_codes(y, strata, stratify=self.stratify, n=n, owner=owner)
        shares = np.array([1.0 - self.test_size, self.test_size])
        bins = assign_patients(patients, codes, shares, check_rng(self.rng))
        _check_bins_filled(bins, 2, owner=owner, what=["train", "test"], sizes=shares,
                           n_patients=len(np.unique(patients)))
        return iter([(np.flatnonzero(bins == 0), np.flatnonzero(bins == 1))])


def _patients_at_two(values: np.ndarray, patients: np.ndarray) -> pd.Series:
    """Patients whose rows carry more than one distinct value (e.g. site)."""
    counts = pd.DataFrame({"p": patients, "v": values}).groupby("p", sort=True)["v"].nunique()
    return counts[counts > 1]


class LeaveOneSiteOut(_Splitter):
    """One fold per site: test on that site, train on all others.

    Patients must belong to one site; a patient at two sites would be on both
    sides of some fold, so it is an error rather than a silent drop.

    Examples
    --------
    >>> sites = ["A", "A", "B", "C", "C"]
    >>> patients = ["p1", "p1", "p2", "p3", "p4"]
    >>> cv = LeaveOneSiteOut()
    >>> [test.tolist() for _, test in cv.split(None, groups=sites, patients=patients)]
    [[0, 1], [2], [3, 4]]
    """

    _param_names = ()

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Number of distinct sites in ``groups``."""
        if groups is None:
            raise ValueError(
                "The 'groups' parameter of LeaveOneSiteOut.get_n_splits must hold the site "
                "of each row. Got None instead."
            )
        return int(pd.Series(np.asarray(groups, dtype=object)).astype(str).nunique())

    def site_order(self, groups: Any) -> list[str]:
        """Sites in fold order (sorted as strings)."""
        return sorted(pd.Series(np.asarray(groups, dtype=object)).astype(str).unique())

    def split(self, X: Any, y: Any = None, groups: Any = None, *,
              patients: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train, test)`` row positions, one fold per site in sorted order.

        Parameters
        ----------
        X : array-like of shape (n_rows, ...), or None
            Only its length is used.
        y : ignored
            Present for scikit-learn compatibility.
        groups : array-like of shape (n_rows,)
            Site of each row.
        patients : array-like of shape (n_rows,)
            Patient id of each row, to verify that no patient is at two sites.
            Required: ``GridSearchCV(cv=LeaveOneSiteOut())`` cannot route it, so
            pass ``cv=list(LeaveOneSiteOut().split(X, y, groups=sites, patients=ids))``.

        Raises
        ------
        SplitError
            A patient has images at two sites, or there are fewer than two sites.
        """
        owner = "LeaveOneSiteOut.split"
        n = n_rows(X, groups, owner)
        sites = as_labels(groups, n=n, param="groups", owner=owner, required="the site")
        pids = as_labels(patients, n=n, param="patients", owner=owner, required="patient ids")
        both = _patients_at_two(sites, pids)
        if len(both):
            raise SplitError(
                f"{owner}: {len(both)} patient(s) have images at more than one site "
                f"({listing(both.index.tolist())}), so leaving one site out would put them "
                "on both sides. Fix: if these are different people sharing an id, make ids "
                "unique per site (e.g. prefix the site); if they are the same people, keep "
                "each patient's images at one site (drop the others), or hold sites out with "
                "GroupHoldout(held_out=[...], straddlers='test') to drop them from training."
            )
        order = sorted(set(sites.tolist()))
        if len(order) < 2:
            raise SplitError(
                f"{owner}: only one site ({listing(order)}) is present; leaving it out leaves "
                "nothing to train on. Fix: use PatientKFold within the site instead."
            )
        return iter([(np.flatnonzero(sites != s), np.flatnonzero(sites == s)) for s in order])


def _apply_straddlers(side: np.ndarray, patients: np.ndarray, policy: str, *,
                      owner: str, what: str) -> np.ndarray:
    """Resolve patients with rows on both the train and the test side."""
    frame = pd.DataFrame({"p": patients, "train": side == TRAIN, "test": side == TEST})
    per_patient = frame.groupby("p", sort=True)[["train", "test"]].any()
    straddling = per_patient.index[per_patient["train"] & per_patient["test"]]
    if not len(straddling):
        return side
    if policy == "raise":
        raise SplitError(
            f"{owner}: {len(straddling)} patient(s) have images on both sides of the split "
            f"({what}): {listing(straddling.tolist())}. Fix: choose straddlers='test' (drop "
            "their training images), 'train' (drop their test images) or 'drop' (both)."
        )
    involved = np.isin(patients, straddling.to_numpy())
    side = side.copy()
    drop_sides = {"test": (TRAIN,), "train": (TEST,), "drop": (TRAIN, TEST)}[policy]
    side[involved & np.isin(side, drop_sides)] = EXCLUDED_STRADDLING
    return side


def _check_sides(side: np.ndarray, *, owner: str, hint: str) -> None:
    for part in (TRAIN, TEST):
        if not (side == part).any():
            raise SplitError(f"{owner}: the {part} side is empty. Fix: {hint}")


class GroupHoldout(_Splitter):
    """Hold out every row whose group value (scanner, protocol, site...) is in ``held_out``.

    Parameters
    ----------
    held_out : sequence of str
        Group values that form the test side; compared as strings.
    straddlers : {'test', 'train', 'drop', 'raise'}, default='test'
        What to do with a patient imaged both in and outside the held-out groups
        (e.g. scanned on two scanners): ``'test'`` keeps the held-out images and
        drops the patient's other images from training, so the test side is every
        held-out image and no test patient was seen in training; ``'train'`` drops
        the patient's held-out images instead; ``'drop'`` drops both; ``'raise'``
        raises :class:`SplitError`. Dropped rows are in neither side; :meth:`assign`
        marks them ``'excluded_straddling'``.

    Examples
    --------
    >>> scanners = ["GE", "GE", "Siemens", "Philips", "Siemens"]
    >>> patients = ["p1", "p2", "p2", "p3", "p4"]
    >>> GroupHoldout(held_out=["Siemens"]).assign(None, groups=scanners,
    ...                                           patients=patients).tolist()
    ['train', 'excluded_straddling', 'test', 'train', 'test']
    """

    _param_names = ("held_out", "straddlers")

    def __init__(self, held_out: Sequence[Any], *, straddlers: Straddlers = "test"):
        owner = type(self).__name__
        if isinstance(held_out, (str, bytes)) or not isinstance(held_out, Sequence) and not \
                isinstance(held_out, (set, frozenset, np.ndarray, pd.Index, pd.Series)):
            held_out = [held_out]
        values = [str(v) for v in held_out]
        if not values:
            raise ValueError(
                f"The 'held_out' parameter of {owner} must name at least one group value. "
                "Got an empty list instead."
            )
        self.held_out = tuple(dict.fromkeys(values))
        self.straddlers = check_option(straddlers, STRADDLER_POLICIES, param="straddlers",
                                       owner=owner)

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Always 1."""
        return 1

    def assign(self, X: Any, y: Any = None, groups: Any = None, *,
               patients: Any = None) -> np.ndarray:
        """Role of every row: ``'train'``, ``'test'`` or ``'excluded_straddling'``.

        Parameters
        ----------
        X : array-like of shape (n_rows, ...), or None
            Only its length is used.
        y : ignored
        groups : array-like of shape (n_rows,)
            Group value (e.g. scanner) of each row.
        patients : array-like of shape (n_rows,)
            Patient id of each row (required).

        Raises
        ------
        SplitError
            A held-out value does not occur, a side is empty, or straddlers='raise'
            and a patient straddles.
        """
        owner = f"{type(self).__name__}.split"
        n = n_rows(X, groups, owner)
        values = as_labels(groups, n=n, param="groups", owner=owner,
                           required="the group value (e.g. scanner)")
        pids = as_labels(patients, n=n, param="patients", owner=owner, required="patient ids")
        present = set(values.tolist())
        for value in self.held_out:
            if value not in present:
                raise SplitError(
                    f"{owner}: held-out value {value!r} does not occur."
                    f"{did_you_mean(value, sorted(present))} Values present: "
                    f"{listing(sorted(present))}."
                )
        side = np.where(np.isin(values, list(self.held_out)), TEST, TRAIN).astype(object)
        side = _apply_straddlers(side, pids, self.straddlers, owner=owner,
                                 what=f"held out {listing(self.held_out)}")
        _check_sides(side, owner=owner, hint="hold out fewer values, or check 'straddlers'.")
        return side

    def split(self, X: Any, y: Any = None, groups: Any = None, *,
              patients: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield one ``(train, test)`` pair; see :meth:`assign` for the parameters."""
        side = self.assign(X, y, groups, patients=patients)
        return iter([(np.flatnonzero(side == TRAIN), np.flatnonzero(side == TEST))])


class ScannerHoldout(GroupHoldout):
    """Hold out the images of some scanners (``groups`` = scanner of each row).

    Same rules as :class:`GroupHoldout`; the name says what the split tests.

    Examples
    --------
    >>> cv = ScannerHoldout(held_out=["B"])
    >>> [t.tolist() for t in next(cv.split(None, groups=["A", "B", "A"],
    ...                                      patients=["p1", "p2", "p3"]))]
    [[0, 2], [1]]
    """


class TemporalSplit(_Splitter):
    """Train on images acquired before ``cutoff``, test on those at/after ``cutoff + gap``.

    Parameters
    ----------
    cutoff : str, date, datetime or pandas.Timestamp
        First instant of the test period (images strictly before it are training).
        A naive cutoff is read in the time zone of the acquisition times; times with
        different UTC offsets are compared in UTC.
    gap : str, timedelta or None, default=None
        Images acquired in ``[cutoff, cutoff + gap)`` go to neither side (marked
        ``'excluded_gap'``), e.g. ``"90D"`` to keep follow-up of training cases out.
    straddlers : {'test', 'train', 'drop', 'raise'}, default='test'
        A patient with images before the cutoff and after ``cutoff + gap``:
        ``'test'`` keeps the later images in the test side and drops the earlier
        ones from training, so the test side is every image of the test period and
        no test patient was seen in training; ``'train'`` assigns the patient by
        the first image (later images dropped); ``'drop'`` drops both sides;
        ``'raise'`` raises. Dropped rows are ``'excluded_straddling'`` in
        :meth:`assign`, which is how the number of such patients is reported.

    Examples
    --------
    >>> dates = ["2020-01-05", "2020-06-01", "2021-02-01", "2021-03-01", "2020-12-20"]
    >>> patients = ["p1", "p2", "p2", "p3", "p4"]
    >>> TemporalSplit("2021-01-01", gap="7D").assign(None, groups=patients, times=dates).tolist()
    ['train', 'excluded_straddling', 'test', 'test', 'train']
    """

    _param_names = ("cutoff", "gap", "straddlers")

    def __init__(self, cutoff: Any, *, gap: Any = None, straddlers: Straddlers = "test"):
        self.cutoff = to_timestamp(cutoff, param="cutoff", owner="TemporalSplit")
        self.gap = to_timedelta(gap, param="gap", owner="TemporalSplit")
        self.straddlers = check_option(straddlers, STRADDLER_POLICIES, param="straddlers",
                                       owner="TemporalSplit")

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Always 1."""
        return 1

    def _times(self, times: Any, n: int, owner: str) -> tuple[pd.Series, pd.Timestamp]:
        if times is None:
            raise ValueError(
                f"The 'times' parameter of {owner} must hold the acquisition date of each "
                "row. Got None instead."
            )
        raw = pd.Series(np.asarray(times, dtype=object).ravel() if not isinstance(
            times, pd.Series) else times.to_numpy(dtype=object))
        if len(raw) != n:
            raise ValueError(
                f"The 'times' parameter of {owner} must have one value per row ({n}). "
                f"Got {len(raw)} values instead."
            )
        try:
            with warnings.catch_warnings():  # mixed offsets are handled just below
                warnings.simplefilter("ignore", FutureWarning)
                parsed = pd.to_datetime(raw, errors="coerce", format="mixed")
        except (TypeError, ValueError):
            parsed = None
        if parsed is None or not pd.api.types.is_datetime64_any_dtype(parsed):
            # Mixed UTC offsets give an error or object values, depending on pandas.
            # Different UTC offsets are comparable in UTC; naive next to zoned times are not.
            zoned = {getattr(pd.Timestamp(v), "tzinfo", None) is not None
                     for v in raw.dropna()}
            if len(zoned) > 1:
                raise SplitError(
                    f"{owner}: some acquisition times carry a time zone and others do not, so "
                    "they cannot be ordered. Fix: write them all with a UTC offset, or all "
                    "without."
                ) from None
            parsed = pd.to_datetime(raw, errors="coerce", format="mixed", utc=True)
        bad = parsed.isna().to_numpy()
        if bad.any():
            raise SplitError(
                f"{owner}: {int(bad.sum())} row(s) have a missing or unparseable acquisition "
                f"time (row positions {listing(np.flatnonzero(bad).tolist())}; values "
                f"{listing(raw[bad].tolist())}). Fix: write ISO 8601 dates such as "
                "'2021-03-01', or exclude those rows from the cohort first."
            )
        parsed = pd.Series(parsed)  # to_datetime of an Index gives an Index, without .dt
        cutoff = self.cutoff
        tz = getattr(parsed.dt, "tz", None)
        if tz is not None and cutoff.tzinfo is None:
            cutoff = cutoff.tz_localize(tz)
        elif tz is None and cutoff.tzinfo is not None:
            cutoff = cutoff.tz_convert(None)
        return parsed, cutoff

    def assign(self, X: Any, y: Any = None, groups: Any = None, *,
               times: Any = None) -> np.ndarray:
        """Role of every row: ``train``, ``test``, ``excluded_gap`` or ``excluded_straddling``.

        Parameters
        ----------
        X : array-like of shape (n_rows, ...), or None
            Only its length is used.
        y : ignored
        groups : array-like of shape (n_rows,)
            Patient id of each row.
        times : array-like of shape (n_rows,)
            Acquisition time of each row (datetimes or ISO 8601 strings).

        Raises
        ------
        SplitError
            A time is missing, a side is empty, or straddlers='raise' and a patient
            straddles.
        """
        owner = "TemporalSplit.split"
        n = n_rows(X, groups, owner)
        pids = as_labels(groups, n=n, param="groups", owner=owner, required="patient ids")
        parsed, cutoff = self._times(times, n, owner)
        before = (parsed < cutoff).to_numpy()
        after = (parsed >= cutoff + self.gap).to_numpy()
        side = np.where(before, TRAIN, np.where(after, TEST, EXCLUDED_GAP)).astype(object)
        side = _apply_straddlers(side, pids, self.straddlers, owner=owner,
                                 what=f"cutoff {cutoff.isoformat()}")
        _check_sides(side, owner=owner, hint=(
            f"choose a cutoff between the first ({parsed.min().isoformat()}) and last "
            f"({parsed.max().isoformat()}) acquisition time, or a shorter gap."))
        return side

    def split(self, X: Any, y: Any = None, groups: Any = None, *,
              times: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield one ``(train, test)`` pair; see :meth:`assign` for the parameters."""
        side = self.assign(X, y, groups, times=times)
        return iter([(np.flatnonzero(side == TRAIN), np.flatnonzero(side == TEST))])


#: Partition names of :func:`nested_partitions`, in order.
NESTED_NAMES = ("development", "calibration", "internal_test")


def nested_partitions(
    cohort_or_groups: Cohort | Any,
    y: Any = None,
    *,
    calibration_size: float = 0.1,
    test_size: float = 0.2,
    stratify: bool = True,
    strata: Any = None,
    rng: RngLike = None,
) -> pd.Series:
    """Assign each row to ``development``, ``calibration`` or ``internal_test`` by patient.

    Parameters
    ----------
    cohort_or_groups : Cohort or array-like of shape (n_rows,)
        A cohort (patient ids and labels are read from its roles), or the patient
        id of each row.
    y : array-like of shape (n_rows,), optional
        Labels when ``cohort_or_groups`` is an array; by default the cohort's label
        column. Missing labels form their own stratum.
    calibration_size : float, default=0.1
        Target share of images in ``calibration``, in [0, 1); 0 leaves it out.
    test_size : float, default=0.2
        Target share of images in ``internal_test``, in [0, 1); 0 leaves it out.
    stratify : bool, default=True
        Balance the label (and ``strata``) across the three partitions.
    strata : str or array-like, optional
        Second stratum: a role (``"site"``) or column name of the cohort, or one
        value per row.
    rng : int, numpy.random.Generator or None, default=None
        Seed of the assignment.

    Returns
    -------
    pandas.Series of str
        Partition name per row, named ``"partition"``, indexed like the cohort
        table (or 0..n-1 for arrays).

    Raises
    ------
    SplitError
        A requested partition would receive no patient.

    Examples
    --------
    >>> import numpy as np
    >>> patients = np.array([f"p{i}" for i in range(20)])
    >>> y = np.tile([0, 1], 10)
    >>> parts = nested_partitions(patients, y, calibration_size=0.2, test_size=0.2, rng=0)
    >>> parts.value_counts().sort_index().to_dict()
    {'calibration': 4, 'development': 12, 'internal_test': 4}
    """
    owner = "nested_partitions"
    calibration_size = _validate_size(calibration_size, param="calibration_size", owner=owner,
                                      allow_zero=True)
    test_size = _validate_size(test_size, param="test_size", owner=owner, allow_zero=True)
    if calibration_size + test_size >= 1:
        raise ValueError(
            f"The 'calibration_size' and 'test_size' parameters of {owner} must sum to less "
            f"than 1 so that development keeps some images. Got {calibration_size:g} + "
            f"{test_size:g} instead."
        )
    if isinstance(cohort_or_groups, Cohort):
        cohort = cohort_or_groups
        groups = cohort.patient_ids
        if y is None:
            y = cohort.column("label").to_numpy(dtype=object)
        if isinstance(strata, str):
            strata = column_for(cohort, strata, owner=owner).to_numpy(dtype=object)
        index = cohort.table.index
    else:
        groups = cohort_or_groups
        index = None
    n = n_rows(None, groups, owner)
    patients = as_labels(groups, n=n, param="cohort_or_groups", owner=owner,
                         required="patient ids")
    codes = _stratify_codes(y, strata, stratify=stratify, n=n, owner=owner)
    shares = np.array([1.0 - calibration_size - test_size, calibration_size, test_size])
    bins = assign_patients(patients, codes, shares, check_rng(rng))
    _check_bins_filled(bins, 3, owner=owner, what=list(NESTED_NAMES), sizes=shares,
                       n_patients=len(np.unique(patients)))
    names = np.array(NESTED_NAMES, dtype=object)[bins]
    return pd.Series(names, index=index, name="partition", dtype=object)


def column_for(cohort: Cohort, name: str, *, owner: str) -> pd.Series:
    """A cohort column by role (``"site"``) or by column name."""
    if name in cohort.roles.describe() and isinstance(getattr(cohort.roles, name), str):
        return cohort.column(name)
    if name in cohort.table.columns:
        return cohort.table[name]
    options = [r for r, c in cohort.roles.assigned().items()] + [str(c) for c in
                                                                  cohort.table.columns]
    raise SplitError(
        f"{owner}: {name!r} is neither an assigned role nor a column of "
        f"{cohort.describe_source()}.{did_you_mean(name, options)} Fix: name a column, or "
        f"assign the role under [data.columns] in study.toml."
    )
