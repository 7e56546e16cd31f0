"""Labels: inter-rater agreement, annotators against a reference, certainty strata, label errors.

Agreement coefficients (Cohen's kappa, Fleiss' kappa, Krippendorff's alpha)
return an :class:`~claimladder._core.Estimate` whose interval comes from the
metrics engine's cluster bootstrap over items -- or patients, with ``groups``.
Findings: ``labels.agreement``, ``labels.annotator_reference`` and
``labels.label_errors`` bear on rung 0 (cohort: the reference labels are part of
the cohort definition); ``labels.model_vs_label_certainty`` bears on rung 1
(internal validation: a model surer than its labels suggests label leakage).
"""

from ._agreement import LEVELS, cohen_kappa, fleiss_kappa, krippendorff_alpha
from ._annotators import (
    AGREEMENT_COLUMNS,
    ANNOTATOR_COLUMNS,
    STATISTICS,
    agreement_strata,
    agreement_table,
    annotator_performance,
    check_agreement,
    check_annotators,
    pairwise_agreement,
)
from ._certainty import (
    STRATA_COLUMNS,
    check_model_vs_label_certainty,
    performance_by_label_certainty,
)
from ._errors import (
    LABEL_ISSUE_COLUMNS,
    check_label_errors,
    find_label_issues,
    out_of_fold_probabilities,
)

__all__ = [
    "AGREEMENT_COLUMNS",
    "ANNOTATOR_COLUMNS",
    "LABEL_ISSUE_COLUMNS",
    "LEVELS",
    "STATISTICS",
    "STRATA_COLUMNS",
    "agreement_strata",
    "agreement_table",
    "annotator_performance",
    "check_agreement",
    "check_annotators",
    "check_label_errors",
    "check_model_vs_label_certainty",
    "cohen_kappa",
    "find_label_issues",
    "fleiss_kappa",
    "krippendorff_alpha",
    "out_of_fold_probabilities",
    "pairwise_agreement",
    "performance_by_label_certainty",
]
