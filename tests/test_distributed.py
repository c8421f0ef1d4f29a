"""The dask task runner: local and external clusters, the content-hash cache, failures."""

from __future__ import annotations

import json

import pytest

from tangentcore.config import Config
from tangentcore.distributed import TaskRunner, task_key
from tangentcore.errors import TangentcoreError
from tangentcore.sizing import config_document, kernel_accuracy_task

pytest.importorskip("dask.distributed", reason="dask.distributed is not installed")


def _kernel_arguments(depth: int, surrogate: str = "gaussian") -> dict:
    return {"config": config_document(Config()), "depth": depth, "surrogate": surrogate, "scale": 1.0,
            "sigma_w": 1.0, "sigma_b": 0.1, "encoding": "uint", "input_bits": 4}


def test_local_cluster_runs_and_caches(tmp_path):
    arguments = [_kernel_arguments(1), _kernel_arguments(2)]
    with TaskRunner(workers=2, cache_dir=tmp_path, progress=False) as runner:
        results = runner.map(kernel_accuracy_task, arguments, description="kernels")
        assert runner.computed == 2
        assert runner.cache_hits == 0
        assert len(runner._client.scheduler_info()["workers"]) == 2
    # The workers computed what a direct call computes.
    assert [r["accuracy"] for r in results] == [kernel_accuracy_task(**a)["accuracy"] for a in arguments]
    assert len(list(tmp_path.glob("*.json"))) == 2

    with TaskRunner(workers=2, cache_dir=tmp_path, progress=False) as again:
        cached = again.map(kernel_accuracy_task, arguments, description="kernels")
        assert again.computed == 0
        assert again.cache_hits == 2
        assert again._client is None  # everything came from the cache, so no cluster started
    assert cached == results


def test_use_cache_false_recomputes(tmp_path):
    arguments = [_kernel_arguments(1)]
    with TaskRunner(workers=1, cache_dir=tmp_path, progress=False) as runner:
        runner.map(kernel_accuracy_task, arguments, description="kernels")
    with TaskRunner(workers=1, cache_dir=tmp_path, progress=False, use_cache=False) as runner:
        runner.map(kernel_accuracy_task, arguments, description="kernels")
        assert runner.computed == 1
        assert runner.cache_hits == 0


def test_external_scheduler(tmp_path):
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster:
        with TaskRunner(scheduler=cluster.scheduler_address, cache_dir=tmp_path, progress=False) as runner:
            (result,) = runner.map(kernel_accuracy_task, [_kernel_arguments(1)], description="kernels")
    assert 0 < result["accuracy"] <= 1


def test_unreachable_scheduler_names_the_address(tmp_path):
    with TaskRunner(scheduler="tcp://127.0.0.1:9", cache_dir=tmp_path, progress=False) as runner:
        with pytest.raises(TangentcoreError, match="127.0.0.1:9"):
            runner.map(kernel_accuracy_task, [_kernel_arguments(1)], description="kernels")


def test_failed_task_raises_and_keeps_finished_results(tmp_path):
    good, bad = _kernel_arguments(1), _kernel_arguments(1, surrogate="no_such_surrogate")
    with TaskRunner(workers=1, cache_dir=tmp_path, progress=False) as runner:
        runner.map(kernel_accuracy_task, [good], description="kernels")
        with pytest.raises(Exception, match="no_such_surrogate"):
            runner.map(kernel_accuracy_task, [good, bad], description="kernels")
    stored = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    assert [s["arguments"]["surrogate"] for s in stored] == ["gaussian"]


def test_task_key_ignores_argument_order():
    a = task_key(kernel_accuracy_task, {"x": 1, "y": [1, 2]})
    assert a == task_key(kernel_accuracy_task, {"y": [1, 2], "x": 1})
    assert a != task_key(kernel_accuracy_task, {"x": 2, "y": [1, 2]})
    assert a != task_key(config_document, {"x": 1, "y": [1, 2]})
    with pytest.raises(TypeError, match="JSON"):
        task_key(kernel_accuracy_task, {"x": object()})
