"""embed_images and pair_distances: de-duplication, caching, resuming, distances vs scipy."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from scipy.spatial import distance as scipy_distance

from facebench.builtins import BUILTIN_METRICS
from facebench.engine import embed_images, pair_distances
from facebench.errors import ConfigError, DataError, UnknownNameError
from facebench.store import EmbeddingStore

SCIPY_METRICS = {
    "cosine": scipy_distance.cosine,
    "euclidean": scipy_distance.euclidean,
    "squared-euclidean": scipy_distance.sqeuclidean,
    "correlation": scipy_distance.correlation,
    "manhattan": scipy_distance.cityblock,
}


@pytest.fixture
def store(tmp_path):
    with EmbeddingStore(tmp_path / "cache") as store:
        yield store


def direct_embeddings(model, paths, layer):
    """Embeddings from a plain forward pass, one image at a time, without the engine."""
    tensors = torch.stack([model.preprocess_image(path) for path in paths])
    return model.get_output(tensors)[layer].double().numpy()


def test_each_unique_image_goes_through_the_model_once(tiny, digest, images, tmp_path, store):
    duplicate = tmp_path / "images" / "same-bytes.png"
    duplicate.write_bytes(images[0].read_bytes())
    model = tiny(extract_layers=["conv", "fc"])
    task_a = [images[0], images[1], images[2], images[1], duplicate]
    task_b = [images[2], images[3], duplicate, images[4]]
    first = embed_images(model, task_a, store=store, batch_size=2, num_workers=0, progress=False)
    second = embed_images(model, task_b, store=store, batch_size=2, num_workers=0, progress=False)
    expected = sorted(digest(model.preprocess_image(path)) for path in images[:5])
    assert sorted(model.seen) == expected
    assert (first.computed, first.cached) == (3, 0)
    assert (second.computed, second.cached) == (2, 2)
    np.testing.assert_array_equal(first.vectors("fc", [duplicate]), first.vectors("fc", [images[0]]))


def test_embeddings_equal_a_plain_forward_pass(tiny, images, store):
    model = tiny(extract_layers=["conv", "fc"], reduction={"conv": "mean"})
    embedded = embed_images(model, images, store=store, batch_size=4, num_workers=0, progress=False)
    for layer in ("conv", "fc"):
        np.testing.assert_allclose(
            embedded.vectors(layer, images), direct_embeddings(model, images, layer), rtol=1e-5, atol=1e-6
        )


def test_a_rerun_is_a_cache_hit_without_any_forward_pass(tiny, images, tmp_path):
    with EmbeddingStore(tmp_path / "cache") as store:
        cold = embed_images(tiny(), images, store=store, batch_size=4, num_workers=0, progress=False)
        cold_vectors = cold.vectors("conv", images)
    model = tiny()
    with EmbeddingStore(tmp_path / "cache") as store:  # a new run
        warm = embed_images(model, images, store=store, batch_size=4, num_workers=0, progress=False)
        assert model.forward_calls == 0 and warm.computed == 0 and warm.cached == len(images)
        assert model._model is None  # layers checked on the meta device: the network is never built
        np.testing.assert_array_equal(warm.vectors("conv", images), cold_vectors)


def test_changed_image_bytes_are_recomputed(tiny, digest, images, store):
    embed_images(tiny(), images, store=store, num_workers=0, progress=False)
    images[3].write_bytes(images[7].read_bytes())  # same path, new content
    model = tiny()
    result = embed_images(model, images, store=store, num_workers=0, progress=False)
    assert model.seen == [] and result.computed == 0  # its new content is already known (image 7)
    from PIL import Image

    Image.new("RGB", (32, 32), (9, 9, 9)).save(images[3])
    model = tiny()
    embed_images(model, images, store=store, num_workers=0, progress=False)
    assert model.seen == [digest(model.preprocess_image(images[3]))]


def test_changed_weights_layer_or_reduction_are_recomputed(tiny, images, tmp_path, store):
    weights = tmp_path / "w.pth"
    torch.save(tiny(seed=1).model.state_dict(), weights)
    options = {"store": store, "num_workers": 0, "progress": False}
    embed_images(tiny(weights_path=weights), images, **options)

    same = tiny(weights_path=weights)
    embed_images(same, images, **options)
    assert same.forward_calls == 0

    torch.save(tiny(seed=2).model.state_dict(), weights)
    os.utime(weights, ns=(10**9, 10**9))
    new_weights = tiny(weights_path=weights)
    embed_images(new_weights, images, **options)
    assert len(new_weights.seen) == len(images)

    more_layers = tiny(weights_path=weights, extract_layers=["conv", "fc"])
    result = embed_images(more_layers, images, **options)
    assert len(more_layers.seen) == len(images)
    assert len(list(result.table("conv").folder.glob("*.npy"))) == 1  # conv rows were not written again

    other_reduction = tiny(weights_path=weights, reduction="mean")
    embed_images(other_reduction, images, **options)
    assert len(other_reduction.seen) == len(images)


def test_an_interrupted_run_resumes_with_what_it_finished(tiny, digest, images, store):
    options = {"store": store, "batch_size": 3, "num_workers": 0, "progress": False}
    interrupted = tiny(fail_on_call=3)
    with pytest.raises(KeyboardInterrupt):
        embed_images(interrupted, images, **options)
    assert len(interrupted.seen) == 6  # two whole batches were stored before the interruption
    resumed = tiny()
    result = embed_images(resumed, images, **options)
    assert (result.computed, result.cached) == (4, 6)
    assert sorted(resumed.seen) == sorted(digest(resumed.preprocess_image(path)) for path in images[6:])
    np.testing.assert_allclose(
        result.vectors("conv", images), direct_embeddings(resumed, images, "conv"), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("metric_name", [spec.name for spec in BUILTIN_METRICS])
def test_distances_equal_scipy_per_pair(tiny, images, store, metric_name):
    model = tiny(extract_layers=["conv", "fc"])
    embedded = embed_images(model, images, store=store, num_workers=0, progress=False)
    rng = np.random.default_rng(0)
    img1 = [images[i] for i in rng.integers(0, len(images), 25)]
    img2 = [images[i] for i in rng.integers(0, len(images), 25)]
    reference = dict(zip(images, direct_embeddings(model, images, "fc"), strict=True))
    expected = [
        SCIPY_METRICS[metric_name](reference[a], reference[b]) for a, b in zip(img1, img2, strict=True)
    ]
    got = pair_distances(embedded, "fc", img1, img2, metric_name, batch_size=4)
    assert got.dtype == np.float64 and got.shape == (25,)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got, pair_distances(embedded, "fc", img1, img2, metric_name))


def test_every_builtin_metric_is_checked_against_scipy():
    assert {spec.name for spec in BUILTIN_METRICS} == set(SCIPY_METRICS)


def test_a_users_callable_metric_is_accepted_and_checked(tiny, images, store):
    embedded = embed_images(tiny(extract_layers="fc"), images, store=store, num_workers=0, progress=False)

    def chebyshev(a, b):
        return (a - b).abs().amax(dim=1)

    vectors = embedded.vectors("fc", images).astype(np.float64)
    expected = [scipy_distance.chebyshev(vectors[i], vectors[i + 1]) for i in range(len(images) - 1)]
    got = pair_distances(embedded, "fc", images[:-1], images[1:], chebyshev)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    with pytest.raises(ConfigError, match="returned shape"):
        pair_distances(embedded, "fc", images[:-1], images[1:], lambda a, b: a - b)


def test_pair_distances_refuses_unembedded_images_and_layers(tiny, images, store):
    embedded = embed_images(tiny(), images[:3], store=store, num_workers=0, progress=False)
    with pytest.raises(DataError, match=r"face5\.png.*was not embedded"):
        pair_distances(embedded, "conv", images[:1], images[5:6], "cosine")
    with pytest.raises(ConfigError, match="not embedded at layer 'fc'"):
        pair_distances(embedded, "fc", images[:1], images[1:2], "cosine")
    with pytest.raises(DataError, match="must pair up"):
        pair_distances(embedded, "conv", images[:2], images[:1], "cosine")


def test_unknown_layer_fails_before_any_image_is_read(tiny, images, tmp_path, store):
    with pytest.raises(UnknownNameError, match=r"'convv'.*did you mean 'conv'"):
        embed_images(tiny(extract_layers="convv"), [tmp_path / "missing.png"], store=store, progress=False)
    embed_images(tiny(), images, store=store, num_workers=0, progress=False)
    cached = tiny(extract_layers="fcc")  # same identity: checked on the network built on meta, unbuilt
    with pytest.raises(UnknownNameError, match=r"'fcc'.*did you mean 'fc'.*relu"):
        embed_images(cached, [tmp_path / "missing.png"], store=store, progress=False)
    assert cached._model is None


def test_workers_give_the_same_embeddings_and_name_a_corrupt_file(tiny, images, tmp_path):
    with EmbeddingStore(None) as store:
        parallel = embed_images(tiny(), images, store=store, batch_size=2, num_workers=2, progress=False)
        vectors = parallel.vectors("conv", images)
    np.testing.assert_allclose(vectors, direct_embeddings(tiny(), images, "conv"), rtol=1e-5, atol=1e-6)
    broken = tmp_path / "images" / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with EmbeddingStore(None) as store, pytest.raises(DataError) as info:
        embed_images(tiny(), [*images, broken], store=store, batch_size=2, num_workers=2, progress=False)
    assert str(info.value).startswith("image ") and "broken.jpg" in str(info.value)
    assert "Traceback" not in str(info.value)


def test_float16_store_gives_close_distances(tiny, images, tmp_path):
    model = tiny(extract_layers="fc")
    with EmbeddingStore(tmp_path / "a") as full, EmbeddingStore(tmp_path / "b", dtype="float16") as half:
        exact = pair_distances(
            embed_images(model, images, store=full, progress=False), "fc", images[:-1], images[1:]
        )
        approx = pair_distances(
            embed_images(model, images, store=half, progress=False), "fc", images[:-1], images[1:]
        )
    np.testing.assert_allclose(approx, exact, rtol=1e-2, atol=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_gpu_embeddings_and_distances_match_the_cpu(tiny, images, tmp_path, precision):
    options = {"batch_size": 4, "num_workers": 2, "progress": False}
    with EmbeddingStore(tmp_path / "cpu") as cpu_store, EmbeddingStore(tmp_path / "gpu") as gpu_store:
        cpu = embed_images(tiny(extract_layers=["conv", "fc"]), images, store=cpu_store, **options)
        gpu_model = tiny(extract_layers=["conv", "fc"], device="cuda", precision=precision)
        gpu = embed_images(gpu_model, images, store=gpu_store, **options)
        assert gpu.device.type == "cuda"
        tolerance = 1e-4 if precision == "fp32" else 3e-2
        np.testing.assert_allclose(
            gpu.vectors("conv", images), cpu.vectors("conv", images), atol=tolerance, rtol=tolerance
        )
        for metric in ("cosine", "euclidean"):
            np.testing.assert_allclose(
                pair_distances(gpu, "fc", images[:-1], images[1:], metric),
                pair_distances(cpu, "fc", images[:-1], images[1:], metric),
                rtol=tolerance,
                atol=tolerance,
            )


def test_preprocessing_that_refuses_an_image_is_reported_with_its_file(tiny, images):
    def refuse_dark(image):
        if np.asarray(image).mean() < 200:
            raise DataError("no face found")
        return torch.zeros(3, 32, 32)

    with EmbeddingStore(None) as store, pytest.raises(DataError) as info:
        embed_images(tiny(preprocess_function=refuse_dark), images, store=store, progress=False)
    assert str(info.value) == f"image {str(images[0])!r}: no face found"
