"""ImageFiles: a sequence of images that decodes on access and pickles as paths."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image

from claimladder._core import UsageError
from claimladder.cohort import ImageFiles
from claimladder.io import read_image


@pytest.fixture()
def files(tmp_path):
    paths = []
    for k in range(3):
        path = tmp_path / f"img{k}.png"
        Image.fromarray(np.full((8, 6), 40 * k, np.uint8)).save(path)
        paths.append(str(path))
    return ImageFiles([*paths, str(tmp_path / "missing.png"), ""])


def test_decodes_on_access_and_unreadable_is_none(files):
    assert len(files) == 5
    np.testing.assert_array_equal(files[1], read_image(files.paths[1]))
    assert files[3] is None and files[4] is None
    assert isinstance(files[1:3], ImageFiles) and files[1:3].paths == files.paths[1:3]
    assert files.take([2, 0]).paths == (files.paths[2], files.paths[0])
    assert [im is None for im in files] == [False, False, False, True, True]


def test_pickles_as_paths(files):
    blob = pickle.dumps(files)
    assert len(blob) < 1000
    assert pickle.loads(blob).paths == files.paths


def test_stack_checks_every_file(files, tmp_path):
    stack = files.take([0, 1, 2]).stack(owner="f")
    assert stack.shape == (3, 8, 6) and stack.dtype == np.float32
    with pytest.raises(UsageError, match=r"Image 7 of the ImageFiles passed to f .*missing"):
        files.take([0, 3]).stack(owner="f", positions=[6, 7])
    odd = tmp_path / "odd.png"
    Image.fromarray(np.zeros((9, 6), np.uint8)).save(odd)
    with pytest.raises(UsageError, match=r"has shape \(9, 6\), unlike the first image's"):
        ImageFiles([files.paths[0], str(odd)]).stack(owner="f")
