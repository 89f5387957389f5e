"""Is the chat model's endpoint usable? `/health?deep=true` asks it (`models.list()`), cached; plain `/health` does not."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Callable

from services.core.errors import describe_failure

PROBE_TIMEOUT_SECONDS = 5.0  # a health probe must answer quickly even when the endpoint hangs


@dataclass(frozen=True)
class ModelStatus:
    ready: bool
    detail: str


class ModelProbe:
    """Checks the configured model endpoint at most once per `cache_seconds`; concurrent probes share one check."""

    def __init__(self, *, mode: str, model: str, openai_client=None, cache_seconds: float = 60.0,
                 timeout_seconds: float = PROBE_TIMEOUT_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._mode, self._model = mode, model
        self._client = None if mode == "offline" else openai_client  # the offline model is built in: nothing to ask
        self._cache_seconds, self._timeout, self._clock = cache_seconds, timeout_seconds, clock
        self._last: tuple[float, ModelStatus] | None = None
        self._lock = asyncio.Lock()

    def unchecked(self) -> ModelStatus:
        """What plain /health says: nothing was contacted."""
        if self._client is None:
            return ModelStatus(True, f"{self._mode}: built in, always ready")
        return ModelStatus(True, f"{self._mode} ({self._model}): not checked (use ?deep=true)")

    async def check(self) -> ModelStatus:
        """Contact the endpoint (or reuse a result younger than the cache time)."""
        if self._client is None:
            return self.unchecked()
        async with self._lock:
            if self._last is None or self._clock() - self._last[0] >= self._cache_seconds:
                self._last = (self._clock(), await self._probe())
            checked_at, status = self._last
        age = int(self._clock() - checked_at)
        return ModelStatus(status.ready, f"{status.detail} (checked {age} s ago)" if age else status.detail)

    async def _probe(self) -> ModelStatus:
        where = f"{self._mode} {self._client.base_url}"
        try:
            client = self._client.with_options(timeout=self._timeout, max_retries=0)
            async def listing():
                return await client.models.list()

            page = await asyncio.wait_for(listing(), self._timeout + 1)  # a backstop to the client's own timeout
            ids = {model.id for model in page.data}
        except Exception as exc:  # unreachable, refused key, timeout: all mean "not ready" here
            return ModelStatus(False, f"{where}: {describe_failure(exc)}")
        if ids and self._model not in ids:
            return ModelStatus(False, f"{where}: reachable, but it does not list the model '{self._model}'")
        return ModelStatus(True, f"{where}: reachable, model '{self._model}' available")
