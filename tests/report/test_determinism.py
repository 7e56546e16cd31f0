"""Golden test: the same study and seed give byte-identical evidence.json, timestamps aside.

Two demo studies are generated from the same seed in different folders, a model is
fitted on each, and every rung runs on both; the ladder then runs a second time on
the first study in the same process (warm caches). All three ``evidence.json``
texts must be equal byte for byte once ``created_at`` is blanked, and so must the
HTML reports rendered from them.

No digest of the bytes is stored in the repository: the numbers pass through
BLAS (the demo model's fit, bootstrap matrix products) and zlib (thumbnail PNGs),
whose last bits and compressed bytes differ between CPUs and library builds, so a
stored digest would fail on a correct platform and say nothing a same-process
comparison does not. A run on two platforms can still be compared with
``claimladder report`` outputs and a tolerance.
"""

import json
import re

import pytest

from claimladder import Evidence
from claimladder.datasets import fit_demo_model, make_demo_study
from claimladder.ladder import load_study, partition_image_ids, run_ladder
from claimladder.report import render_html

pytestmark = pytest.mark.slow

_TIMESTAMP = re.compile(r'"(created_at|first_access|last_access|when)": "[^"]*"')


def _without_timestamps(text: str) -> str:
    return _TIMESTAMP.sub(lambda m: f'"{m.group(1)}": null', text)


def _first_difference(a: str, b: str) -> str:
    """The first differing line of two texts, for a readable failure message."""
    for i, (x, y) in enumerate(zip(a.splitlines(), b.splitlines())):
        if x != y:
            return f"line {i + 1}:\n  {x[:300]}\n  {y[:300]}"
    return f"lengths {len(a)} and {len(b)}"


def _fewer_resamples(path, n=200):
    """Fewer bootstrap replicates: determinism does not depend on their number, CI time does."""
    text = path.read_text()
    assert "n_resamples = 1000" in text
    path.write_text(text.replace("n_resamples = 1000", f"n_resamples = {n}"))


def _run(root, *, study=None, model=None):
    if study is None:
        demo = make_demo_study(root, n_patients=80, rng=0)
        _fewer_resamples(demo.study_path)
        study = load_study(demo.study_path)
        model, _ = fit_demo_model(root, train_image_ids=partition_image_ids(study, "development"),
                                  rng=0)
    return study, model, run_ladder(study, model=model.predict_proba)


def test_same_study_and_seed_give_identical_evidence(tmp_path):
    # same folder name, different parents: provenance names the images folder, not its path
    study, model, first = _run(tmp_path / "a" / "study")
    _, _, again = _run(None, study=study, model=model)
    _, _, elsewhere = _run(tmp_path / "b" / "study")
    texts = [_without_timestamps(e.to_json()) for e in (first, again, elsewhere)]
    assert '"created_at": null' in texts[0]  # the timestamp exists and was blanked
    assert texts[0] == texts[1], _first_difference(texts[0], texts[1])  # same process, again
    assert texts[0] == texts[2], _first_difference(texts[0], texts[2])  # regenerated study
    # the evidence exercises every rung and the failure analysis, so the guard is broad
    data = json.loads(texts[0])
    assert {f["rung"] for f in data["findings"]} == set(range(7))
    assert any(f["check"] == "failure.worst_cases" and f["plots"] for f in data["findings"])
    # and the report rendered from it is identical too
    html = [render_html(Evidence.from_json(t)) for t in (texts[0], texts[2])]
    assert html[0] == html[1], _first_difference(*html)
    # evidence.json re-renders to the same report as the evidence object itself
    direct, reread = render_html(first), render_html(Evidence.from_json(first.to_json()))
    assert direct == reread, _first_difference(direct, reread)
