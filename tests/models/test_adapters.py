"""Model adapters: every kind of model, batching, activations, metadata and errors."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from claimladder.models import (
    CallableAdapter,
    ModelAdapter,
    ModelOutputError,
    ModelSpecError,
    OnnxAdapter,
    SklearnAdapter,
    TorchAdapter,
    load_model,
)

torch = pytest.importorskip("torch")


def _images(n: int = 10, size: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, size, size), dtype=np.float32)


class _Linear(torch.nn.Module):
    """(N, 1, H, W) -> logit of the positive class."""

    def __init__(self, size: int = 8) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(size * size, 1)
        with torch.no_grad():
            self.linear.weight.copy_(torch.linspace(-1, 1, size * size)[None])
            self.linear.bias.fill_(0.1)

    def forward(self, x):
        return self.linear(x.flatten(1))[:, 0]


def _reference_logits(images: np.ndarray) -> np.ndarray:
    w = np.linspace(-1, 1, images.shape[1] * images.shape[2])
    return images.reshape(len(images), -1).astype(np.float64) @ w + 0.1


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def test_callable_adapter_batches_and_caches():
    calls = []

    def model(x):
        calls.append(len(x))
        return x.mean(axis=(1, 2))

    adapter = load_model(model, batch_size=4)
    assert isinstance(adapter, CallableAdapter)
    images = _images(10)
    out = adapter.predict_proba(images)
    np.testing.assert_allclose(out, images.mean(axis=(1, 2)), rtol=1e-6)
    assert calls == [4, 4, 2]
    again = adapter.predict_proba(images)
    np.testing.assert_array_equal(out, again)
    assert calls == [4, 4, 2]  # all from the cache
    assert adapter.cache.hits == 10 and adapter.cache.misses == 10
    # Partly new images: only those are scored.
    mixed = np.concatenate([images[:3], _images(2, seed=1)])
    adapter.predict_proba(mixed)
    assert calls[-1] == 2


def test_cache_can_be_disabled():
    calls = []

    def model(x):
        calls.append(len(x))
        return x.mean(axis=(1, 2))

    adapter = load_model(model, cache=False)
    adapter.predict_proba(_images(3))
    adapter.predict_proba(_images(3))
    assert calls == [3, 3] and adapter.cache is None


def test_sklearn_adapter_matches_estimator():
    from sklearn.linear_model import LogisticRegression

    images = _images(40)
    y = (images.mean(axis=(1, 2)) > np.median(images.mean(axis=(1, 2)))).astype(int)
    est = LogisticRegression().fit(images.reshape(40, -1), y)
    adapter = load_model(est)
    assert isinstance(adapter, SklearnAdapter) and adapter.classes == (0, 1)
    np.testing.assert_allclose(adapter.predict_proba(images),
                               est.predict_proba(images.reshape(40, -1)))


def test_sklearn_adapter_with_preprocess_and_metadata():
    from sklearn.linear_model import LogisticRegression

    images = _images(30)
    meta = pd.DataFrame({"age": np.linspace(20, 80, 30)})
    y = (meta["age"] > 50).astype(int).to_numpy()

    def features(x, metadata):
        return np.column_stack([x.mean(axis=(1, 2)), metadata["age"].to_numpy()])

    est = LogisticRegression().fit(features(images, meta), y)
    adapter = load_model(est, preprocess=features, takes_metadata=True)
    np.testing.assert_allclose(adapter.predict_proba(images, metadata=meta),
                               est.predict_proba(features(images, meta)))
    with pytest.raises(ValueError, match="takes metadata"):
        adapter.predict_proba(images)
    # Changing a metadata value changes the cache key of that row only.
    meta2 = meta.copy()
    meta2.loc[0, "age"] = 99.0
    before = adapter.cache.misses
    adapter.predict_proba(images, metadata=meta2)
    assert adapter.cache.misses - before == 1


def test_torch_module_adapter_with_sigmoid():
    images = _images(6)
    adapter = load_model(_Linear(), activation="sigmoid", batch_size=4)
    assert isinstance(adapter, TorchAdapter)
    np.testing.assert_allclose(adapter.predict_proba(images),
                               _sigmoid(_reference_logits(images)), rtol=1e-5)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_torchscript_file(tmp_path):
    path = tmp_path / "model.pt"
    torch.jit.script(_Linear()).save(str(path))
    adapter = load_model(path, activation="sigmoid")
    assert isinstance(adapter, TorchAdapter) and adapter.fingerprint.startswith("torchscript|")
    images = _images(5)
    np.testing.assert_allclose(adapter.predict_proba(images),
                               _sigmoid(_reference_logits(images)), rtol=1e-5)


def test_torchscript_rejects_plain_checkpoint(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save(_Linear().state_dict(), str(path))
    with pytest.raises(ModelSpecError, match="torch.jit.script"):
        load_model(path)


def _export_onnx(path, *, two_classes: bool = False) -> None:
    module = _Linear()
    if two_classes:
        class TwoLogits(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = module

            def forward(self, x):
                z = self.inner(x)
                return torch.stack([-z, z], dim=1)

        module = TwoLogits()
    torch.onnx.export(module.eval(), (torch.zeros(2, 1, 8, 8),), str(path), dynamo=False,
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onnx_file(tmp_path):
    pytest.importorskip("onnxruntime")
    path = tmp_path / "model.onnx"
    _export_onnx(path)
    adapter = load_model(path, activation="sigmoid", batch_size=3)
    assert isinstance(adapter, OnnxAdapter)
    images = _images(7)
    np.testing.assert_allclose(adapter.predict_proba(images),
                               _sigmoid(_reference_logits(images)), rtol=1e-5)
    assert adapter.n_model_calls == 3


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onnx_softmax_two_columns(tmp_path):
    pytest.importorskip("onnxruntime")
    path = tmp_path / "two.onnx"
    _export_onnx(path, two_classes=True)
    adapter = load_model(path, activation="softmax")
    images = _images(4)
    out = adapter.predict_proba(images)
    z = _reference_logits(images)
    assert out.shape == (4, 2)
    np.testing.assert_allclose(out[:, 1], _sigmoid(2 * z), rtol=1e-5)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)


def test_onnx_missing_runtime_names_the_extra(tmp_path, monkeypatch):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not really onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r"pip install 'claimladder\[onnx\]'"):
        load_model(path)


def test_import_spec(tmp_path, monkeypatch):
    (tmp_path / "my_models.py").write_text(textwrap.dedent("""
        import numpy as np

        def predict_proba(images):
            return np.clip(images.mean(axis=tuple(range(1, images.ndim))), 0, 1)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    adapter = load_model("my_models:predict_proba")
    assert adapter.name == "my_models:predict_proba"
    volumes = np.full((2, 3, 4, 4), 0.25, dtype=np.float32)
    np.testing.assert_allclose(adapter.predict_proba(volumes), [0.25, 0.25])
    with pytest.raises(ModelSpecError, match="Did you mean 'predict_proba'"):
        load_model("my_models:predict_prob")
    with pytest.raises(ModelSpecError, match="Cannot import module 'no_such_module_xyz'"):
        load_model("no_such_module_xyz:f")


def test_unknown_file_suffix_suggests(tmp_path):
    with pytest.raises(ModelSpecError, match="Did you mean '.onnx'"):
        load_model(tmp_path / "model.onx")
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "absent.onnx")


def test_adapter_passthrough_and_non_models():
    adapter = CallableAdapter(lambda x: x.mean(axis=(1, 2)), name="m")
    assert load_model(adapter) is adapter
    with pytest.raises(ModelSpecError, match="Cannot use a int"):
        load_model(3)


@pytest.mark.parametrize("output, match", [
    (lambda x: x.mean(axis=(1, 2)) * 5, "activation='sigmoid'"),
    (lambda x: np.full(len(x), np.nan), "NaN"),
    (lambda x: x.mean(axis=(1, 2))[:-1], "expected"),
], ids=["logits", "nan", "rows"])
def test_output_validation(output, match):
    with pytest.raises(ModelOutputError, match=match):
        load_model(output).predict_proba(_images(4))


def test_input_validation():
    adapter = load_model(lambda x: x.mean(axis=(1, 2)))
    with pytest.raises(ValueError, match="leading batch axis"):
        adapter.predict_proba(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="different shapes"):
        adapter.predict_proba([np.zeros((8, 8)), np.zeros((4, 4))])


def test_torch_tensor_input():
    adapter = load_model(lambda x: x.mean(axis=(1, 2)))
    images = _images(3)
    np.testing.assert_allclose(adapter.predict_proba(torch.from_numpy(images)),
                               images.mean(axis=(1, 2)), rtol=1e-6)


def test_progress_bar_runs(capsys):
    adapter = load_model(lambda x: x.mean(axis=(1, 2)), batch_size=2, progress=True)
    assert adapter.predict_proba(_images(5)).shape == (5,)


def test_subclass_contract():
    with pytest.raises(TypeError, match="abstract"):
        ModelAdapter(name="base")

    class Half(ModelAdapter):
        fingerprint = "half"

        def _predict_batch(self, batch, metadata):
            return np.full(len(batch), 0.5)

    assert Half(name="half").predict_proba(_images(3)).tolist() == [0.5, 0.5, 0.5]
