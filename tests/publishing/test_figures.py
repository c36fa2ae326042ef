"""The figures are real PNGs: they decode, have a readable size, and show what they were given."""

import numpy as np
import pytest
from PIL import Image

from si_hf.publishing import figures

VIRIDIS_LOW, VIRIDIS_HIGH, RED = (68, 1, 84), (253, 231, 37), (255, 0, 0)


def assert_real_png(path, min_width=300, min_height=200) -> np.ndarray:
    """`path` decodes as a PNG of at least the given size and is not blank; returns its RGB pixels."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.verify()
    with Image.open(path) as image:
        assert image.width >= min_width and image.height >= min_height, image.size
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 10, "blank image"
    packed = (pixels[..., 0].astype(np.int32) << 16) | (pixels[..., 1].astype(np.int32) << 8) | pixels[..., 2]
    assert len(np.unique(packed)) > 20, "too few colours for a figure"
    return pixels


def count_colour(pixels: np.ndarray, rgb, tolerance: int = 12) -> int:
    return int((np.abs(pixels.astype(int) - np.array(rgb)).max(axis=-1) <= tolerance).sum())


def has_colour(pixels: np.ndarray, rgb, tolerance: int = 12) -> bool:
    return count_colour(pixels, rgb, tolerance) > 0


def test_heatmap_shows_values_missing_cells_and_the_supervised_box(tmp_path):
    accuracy = {0: {"1": 1.0, "2": 1.0, "3": 0.0}, 1: {"1": 1.0, "2": 1.0, "3": 0.5, "4": 0.0}}
    keys = ["1", "2", "3", "4"]
    path = figures.heatmap(accuracy, keys, tmp_path / "h.png", supervised={"1", "2"}, title="copy")
    pixels = assert_real_png(path, 500, 250)
    # the colour bar spans both ends of the map; the grey of a cell not evaluated; the red D_0 box
    assert has_colour(pixels, VIRIDIS_LOW) and has_colour(pixels, VIRIDIS_HIGH)
    assert count_colour(pixels, (217, 217, 217), tolerance=1) > 2000  # round 0 never evaluated 4
    assert has_colour(pixels, RED, tolerance=30)
    plain = figures.heatmap(accuracy, keys, tmp_path / "plain.png", title="copy")
    assert not has_colour(assert_real_png(plain), RED, tolerance=30)
    # the cells carry the values: solved cells fill the plot with the top colour, unsolved ones the bottom
    solved = figures.heatmap({0: dict.fromkeys(keys, 1.0)}, keys, tmp_path / "1.png", title="t")
    unsolved = figures.heatmap({0: dict.fromkeys(keys, 0.0)}, keys, tmp_path / "0.png", title="t")
    high = [count_colour(assert_real_png(p), VIRIDIS_HIGH) for p in (solved, unsolved)]
    low = [count_colour(assert_real_png(p), VIRIDIS_LOW) for p in (solved, unsolved)]
    assert high[0] > 5 * high[1] and low[1] > 5 * low[0], (high, low)


def test_heatmap_of_a_long_run_stays_readable(tmp_path):
    """100 rounds x 120 lengths (figure 11's scale): capped size, thinned ticks, no per-cell text."""
    rng = np.random.default_rng(0)
    accuracy = {r: {str(k): float(rng.random()) for k in range(1, 121)} for r in range(100)}
    path = figures.heatmap(accuracy, [str(k) for k in range(1, 121)], tmp_path / "big.png", title="t")
    with Image.open(path) as image:
        assert image.width <= 24 * figures.DPI + 50 and image.height <= 18 * figures.DPI + 50
    assert_real_png(path, 1000, 600)


def test_grid_places_n_by_m(tmp_path):
    acc = {"1x1": 1.0, "1x2": 1.0, "2x1": 1.0, "2x2": 1.0, "3x1": 0.0, "1x3": 0.0, "3x3": 0.0}
    path = figures.grid(acc, tmp_path / "g.png", supervised={"1x1", "1x2", "2x1", "2x2"}, title="mult")
    pixels = assert_real_png(path, 400, 250)
    assert has_colour(pixels, RED, tolerance=30)
    # 2x3 and 3x2 were not evaluated: grey cells, which a full grid lacks (text edges aside)
    full = figures.grid(
        {f"{i}x{j}": 1.0 for i in (1, 2, 3) for j in (1, 2, 3)}, tmp_path / "f.png", title="m"
    )
    grey = [count_colour(p, (217, 217, 217), tolerance=1) for p in (pixels, assert_real_png(full))]
    assert grey[0] > 2000 > 20 * grey[1], grey
    with pytest.raises(ValueError, match="'n x m' difficulty keys such as '5x6', got '7'"):
        figures.grid({"7": 1.0}, tmp_path / "bad.png", title="x")


def test_lines_and_scatter(tmp_path):
    series = {"member 0": {1: 0.9, 2: 0.8}, "member 1": {1: 0.7, 2: 0.6}, "mean": {1: 0.8, 2: 0.7}}
    assert_real_png(figures.lines(series, tmp_path / "l.png", title="t", ylabel="data accuracy"), 500, 300)
    points = {"member 0": [(1, 0.95, 0.9), (2, 0.99, 0.97)], "mean": [(1, 0.95, 0.9)]}
    path = figures.scatter(points, tmp_path / "s.png", title="t", xlabel="x", ylabel="y")
    assert_real_png(path, 400, 400)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda p: figures.heatmap({}, ["1"], p, title="t"), "at least one round and one difficulty"),
        (lambda p: figures.lines({"a": {}}, p, title="t", ylabel="y"), "at least one point"),
        (lambda p: figures.scatter({"a": []}, p, title="t", xlabel="x", ylabel="y"), "at least one point"),
    ],
)
def test_empty_input_is_refused(tmp_path, call, match):
    with pytest.raises(ValueError, match=match):
        call(tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_no_pyplot_and_no_backend_switch(tmp_path):
    """The Agg canvas is used directly: drawing never imports pyplot, which is what would pick or
    switch the backend of a user's session."""
    import subprocess
    import sys

    # figures.py alone, without the si_hf package (whose import brings torch: seconds, not the point)
    code = (
        "import importlib.util, sys; "
        f"spec = importlib.util.spec_from_file_location('figures', {figures.__file__!r}); "
        "figures = importlib.util.module_from_spec(spec); spec.loader.exec_module(figures); "
        f"figures.heatmap({{0: {{'1': 1.0}}}}, ['1'], {str(tmp_path / 'h.png')!r}, title='t'); "
        "assert 'matplotlib.pyplot' not in sys.modules"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert_real_png(tmp_path / "h.png")
