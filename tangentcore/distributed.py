"""Run sweep tasks on a dask.distributed cluster and cache their results by content hash.

A task is a module-level function that takes JSON-able keyword arguments and
returns a JSON-able dict. :class:`TaskRunner` hashes the function's name,
its arguments and the source of the tangentcore package into a key. It
returns the cached result of a key it has seen and submits the other tasks
to the cluster: a local cluster of ``workers`` processes by default, or the
scheduler at ``scheduler``. A result is written to the cache the moment its task ends, so
an interrupted sweep keeps every finished task.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path

from tqdm.auto import tqdm

from tangentcore.errors import TangentcoreError
from tangentcore.fileio import CACHE_ENV, write_atomic

__all__ = ["TaskRunner", "task_key", "default_cache_dir", "code_fingerprint"]

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """Return the folder of cached task results: ``$TANGENTCORE_CACHE/tasks`` or ``~/.cache/tangentcore/tasks``."""
    configured = os.environ.get(CACHE_ENV)
    return (Path(configured) if configured else Path.home() / ".cache" / "tangentcore") / "tasks"


# Modules that only present results; changing them must not invalidate the cache.
_PRESENTATION = {"cli.py", "__main__.py", "sizing_report.py"}


@cache
def code_fingerprint() -> str:
    """Return a hash of the Python sources of the tangentcore package that compute results, so that
    changed code misses the cache."""
    import tangentcore.hw
    import tangentcore.sim
    import tangentcore.sw

    digest = hashlib.sha256()
    for package in (tangentcore, tangentcore.sw, tangentcore.hw, tangentcore.sim):
        folder = Path(package.__file__).parent
        for path in sorted(p for p in folder.glob("*.py") if p.name not in _PRESENTATION):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def task_key(function: Callable, arguments: dict) -> str:
    """Return the content hash of one task: its function, its arguments and the package source."""
    try:
        text = json.dumps({"function": f"{function.__module__}.{function.__qualname__}", "arguments": arguments,
                           "code": code_fingerprint()}, sort_keys=True)
    except TypeError as error:
        raise TypeError(f"task arguments of {function.__qualname__} must be JSON-able: {error}") from None
    return hashlib.sha256(text.encode()).hexdigest()


class TaskRunner:
    """Submit tasks to a dask.distributed cluster, with a content-hash cache in front of it.

    Use it as a context manager: the cluster starts on the first task that
    misses the cache and stops on exit. ``scheduler`` is the address of an
    existing scheduler (``tcp://host:8786``); without it a local cluster of
    ``workers`` single-threaded worker processes runs on 127.0.0.1.
    ``cache_dir`` None uses :func:`default_cache_dir`; ``use_cache`` False
    runs every task again (and still records the results).
    """

    def __init__(self, *, scheduler: str | None = None, workers: int = 2, cache_dir: str | Path | None = None,
                 use_cache: bool = True, progress: bool = True):
        if workers < 1:
            raise TangentcoreError(f"workers must be at least 1, not {workers}")
        self.scheduler = scheduler
        self.workers = workers
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.use_cache = use_cache
        self.progress = progress
        self.cache_hits = 0
        self.computed = 0
        self._client = None
        self._cluster = None

    def __enter__(self) -> "TaskRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def _connect(self):
        if self._client is not None:
            return self._client
        from dask.distributed import Client, LocalCluster

        # dask logs every worker start and stop at INFO; the progress bar is enough.
        logging.getLogger("distributed").setLevel(logging.WARNING)
        if self.scheduler:
            try:
                self._client = Client(self.scheduler, timeout="5s")
            except OSError as error:
                raise TangentcoreError(f"cannot reach the dask scheduler at {self.scheduler!r}: {error}; start one "
                                       f"with `dask scheduler` or leave out --scheduler for a local cluster") from None
        else:
            log.info("starting a local dask cluster of %d workers", self.workers)
            self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                         host="127.0.0.1", dashboard_address=None)
            self._client = Client(self._cluster)
        return self._client

    def _cache_path(self, key: str) -> Path:
        return self.cache_dir / f"{key}.json"

    def map(self, function: Callable, argument_list: list[dict], *, description: str,
            unkeyed: tuple[str, ...] = ()) -> list[dict]:
        """Run ``function(**arguments)`` for every entry of ``argument_list``; return the results in order.

        Arguments named in ``unkeyed`` (such as an output folder) reach the
        task but not its key. A task that raises stops the sweep with its
        error; the results of the tasks that finished before it stay in the
        cache.
        """
        keys = [task_key(function, {k: v for k, v in arguments.items() if k not in unkeyed})
                for arguments in argument_list]
        results: list[dict | None] = [None] * len(keys)
        missing = []
        for index, key in enumerate(keys):
            path = self._cache_path(key)
            if self.use_cache and path.is_file():
                results[index] = json.loads(path.read_text())["result"]
                self.cache_hits += 1
            else:
                missing.append(index)
        if missing:
            from dask.distributed import as_completed

            client = self._connect()
            futures = {client.submit(function, **argument_list[i], key=f"{function.__name__}-{keys[i]}", pure=False): i
                       for i in missing}
            with tqdm(total=len(keys), initial=len(keys) - len(missing), desc=description, unit="task",
                      disable=not self.progress) as bar:
                try:
                    for future in as_completed(futures):
                        index = futures[future]
                        result = future.result()
                        write_atomic(self._cache_path(keys[index]), json.dumps(
                            {"function": function.__qualname__, "arguments": argument_list[index], "result": result},
                            indent=1) + "\n")
                        results[index] = result
                        self.computed += 1
                        bar.update()
                except BaseException:
                    for future in futures:
                        future.cancel()
                    raise
        return results
