import os

import numpy as np
import pytest

from claimladder._core import (
    atomic_write_text,
    check_option,
    check_positive_int,
    check_probability,
    check_rng,
    spawn,
)


def test_check_option_message_shape():
    with pytest.raises(ValueError) as info:
        check_option("wilsn", ["wilson", "clopper-pearson"], param="method", owner="sensitivity")
    message = str(info.value)
    assert message.startswith("The 'method' parameter of sensitivity must be one of")
    assert "Got 'wilsn' instead." in message and "Did you mean 'wilson'?" in message


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, True, "0.9"])
def test_check_probability_rejects(bad):
    with pytest.raises(ValueError, match="must be a float in \\(0, 1\\)"):
        check_probability(bad, param="confidence_level", owner="f")


def test_check_positive_int():
    assert check_positive_int(np.int64(5), param="n", owner="f") == 5
    with pytest.raises(ValueError):
        check_positive_int(0, param="n", owner="f")
    with pytest.raises(ValueError):
        check_positive_int(2.5, param="n", owner="f")


def test_spawned_generators_are_reproducible_and_independent():
    a = [g.random() for g in spawn(7, 3)]
    b = [g.random() for g in spawn(7, 3)]
    assert a == b and len(set(a)) == 3
    assert check_rng(np.random.default_rng(1)).random() == np.random.default_rng(1).random()
    with pytest.raises(ValueError, match="'rng' parameter"):
        check_rng("seed")


def test_atomic_write_keeps_old_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "report.html"
    atomic_write_text(target, "old")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temp file left
