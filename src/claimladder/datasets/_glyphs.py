"""A tiny 5x7 block font, so burned-in text needs no font file or dependency."""

from __future__ import annotations

import numpy as np

__all__ = ["GLYPHS", "render_text_mask"]

# Each glyph is 7 rows of 5 columns; '#' is ink.
_FONT = {
    "A": [".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"],
    "B": ["####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."],
    "E": ["#####", "#....", "#....", "####.", "#....", "#....", "#####"],
    "I": ["#####", "..#..", "..#..", "..#..", "..#..", "..#..", "#####"],
    "L": ["#....", "#....", "#....", "#....", "#....", "#....", "#####"],
    "N": ["#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#", "#...#"],
    "O": [".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."],
    "P": ["####.", "#...#", "#...#", "####.", "#....", "#....", "#...."],
    "R": ["####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"],
    "S": [".####", "#....", "#....", ".###.", "....#", "....#", "####."],
    "T": ["#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."],
    "U": ["#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."],
    " ": [".....", ".....", ".....", ".....", ".....", ".....", "....."],
}

GLYPHS: dict[str, np.ndarray] = {
    char: np.array([[c == "#" for c in row] for row in rows], dtype=bool)
    for char, rows in _FONT.items()
}


def render_text_mask(text: str, *, scale: int = 1) -> np.ndarray:
    """Return a boolean ink mask of ``text`` in the block font.

    Parameters
    ----------
    text : str
        Characters among ``GLYPHS`` (upper-case letters used by the demo and space).
    scale : int, default 1
        Integer magnification of each font pixel.

    Returns
    -------
    numpy.ndarray of bool, shape (7 * scale, (6 * len(text) - 1) * scale)
        One blank column separates glyphs.

    Examples
    --------
    >>> render_text_mask("AP").shape
    (7, 11)
    """
    unknown = sorted({c for c in text if c not in GLYPHS})
    if unknown:
        raise ValueError(
            f"render_text_mask cannot draw {unknown!r}; available characters: "
            f"{''.join(sorted(GLYPHS))!r}."
        )
    spacer = np.zeros((7, 1), dtype=bool)
    parts: list[np.ndarray] = []
    for i, char in enumerate(text):
        if i:
            parts.append(spacer)
        parts.append(GLYPHS[char])
    mask = np.concatenate(parts, axis=1) if parts else np.zeros((7, 0), dtype=bool)
    return np.kron(mask, np.ones((scale, scale), dtype=bool)).astype(bool)
