"""Shortcut probes: is the site visible in the pixels, does the label live in the margins?

Three checks, all reported on rung 5 (robustness): a model that reads the
site, a corner marker or the padding instead of the anatomy fails as soon
as the site or the export changes, and the probes that show it need fresh
inference, as the other rung-5 checks do.

- :func:`check_site_predictability` (``shortcuts.site_predictability``,
  ``shortcuts.site_from_scores``): a patient-grouped, cross-validated linear
  probe predicts the site (scanner, protocol) from image statistics or
  thumbnails, and from the model's label-centred score, against a
  permutation threshold.
- :func:`check_masking` (``shortcuts.masking``): corners, borders and
  detected text/markers are masked, the model is re-run, and the paired
  drop of its AUROC is measured.
- :func:`check_border_only` (``shortcuts.border_only``): a probe that sees
  only the border strips predicts the label.
"""

from ._border import border_features, check_border_only
from ._masking import MASK_REGIONS, check_masking, mask_regions
from ._probe import ProbeResult, ridge_probe
from ._site import FEATURE_SETS, check_site_predictability, image_features

__all__ = [
    "FEATURE_SETS",
    "MASK_REGIONS",
    "ProbeResult",
    "border_features",
    "check_border_only",
    "check_masking",
    "check_site_predictability",
    "image_features",
    "mask_regions",
    "ridge_probe",
]
