"""The engine the embedder and the reranker share: tokenizer, preprocessor, backbone, batching loop."""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator

import torch

from . import media
from .batching import DEFAULT_MAX_BATCH_TOKENS, RunStats, default_pass_cost, default_workers, run_batches
from .inputs import TextPart
from .model import Backbone, resolve_model_path
from .preprocess import Preprocessor, Sample, VisionSettings, leading_text
from .prompts import Fixed, Prompt
from .runtime import resolve_runtime

logger = logging.getLogger(__name__)

IGNORED_MODEL_KWARGS = {"trust_remote_code", "low_cpu_mem_usage"}


def model_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """device / dtype / attn_implementation from the official `**kwargs` (torch_dtype is dtype's old name)."""
    kwargs = dict(kwargs)
    if "torch_dtype" in kwargs:
        if "dtype" in kwargs:
            raise TypeError("pass dtype or torch_dtype, not both")
        kwargs["dtype"] = kwargs.pop("torch_dtype")
    for name in IGNORED_MODEL_KWARGS & set(kwargs):
        kwargs.pop(name)
    unknown = set(kwargs) - {"device", "dtype", "attn_implementation"}
    if unknown:
        raise TypeError(f"unexpected keyword arguments {sorted(unknown)}; model options are device, dtype "
                        f"(or torch_dtype) and attn_implementation")
    return kwargs


class Engine:
    """Loads a checkpoint once and turns prompts into last-token hidden states, batch by batch."""

    def __init__(self, model_name_or_path: str, *, max_length: int, vision: VisionSettings,
                 policy: media.MediaPolicy | None = None, revision: str | None = None,
                 max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS, batch_size: int | None = None,
                 workers: int | None = None, **model_kwargs: Any):
        from transformers import AutoTokenizer

        options = model_options(model_kwargs)
        self.runtime = resolve_runtime(options.get("device"), options.get("dtype"), options.get("attn_implementation"))
        self.path = resolve_model_path(model_name_or_path, revision)
        self.name = str(model_name_or_path)
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.backbone = Backbone(self.path, self.runtime)
        self.preprocessor = Preprocessor(self.tokenizer, vision, max_length, policy or media.DEFAULT_POLICY)
        self.max_batch_tokens = max_batch_tokens
        self.batch_size = batch_size
        self.workers = workers
        self.last_stats = RunStats()
        self._pool: ThreadPoolExecutor | None = None
        self._prefix_runner = None
        self._pool_lock = threading.Lock()

    @property
    def pool(self) -> ThreadPoolExecutor:
        """Preprocessing threads, started on first use and kept for later calls."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers or default_workers(),
                                                thread_name_prefix="qvl-prepare")
            return self._pool

    @property
    def hidden_size(self) -> int:
        return self.backbone.hidden_size

    def share_prefixes(self) -> None:
        """Batches whose prompts start alike (a reranker's pairs) compute their common prefix once."""
        from .shared_prefix import PrefixRunner

        self._prefix_runner = PrefixRunner(self.backbone)

    def forward(self, samples: list[Sample], head: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        runner = self._prefix_runner or self.backbone
        return head(runner.last_hidden(samples, self.preprocessor.pad_id)).cpu()

    def cost(self, job: Prompt | Sample) -> int | Sample:
        """A job's token count; for a text-only prompt, whose cost is its tokenisation, the prepared
        sample itself (so it is tokenised once). A Sample is already prepared."""
        if isinstance(job, Sample):
            return job
        if all(isinstance(piece, (Fixed, TextPart)) for piece in job):
            return self.preprocessor.prepare(job)
        return self.preprocessor.estimate(job)

    def run(self, prompts: Iterable[Prompt | Sample], head: Callable[[torch.Tensor], torch.Tensor], *,
            max_batch_tokens: int | None = None, batch_size: int | None = None, on_error: str = "raise",
            show_progress: bool | None = False, total: int | None = None, desc: str = "embedding",
            stats: RunStats | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield (position, head(hidden)) for each prompt (or Sample prepared already), in batch order;
        see `batching.run_batches`."""
        stats = stats if stats is not None else RunStats()
        self.last_stats = stats
        yield from run_batches(
            prompts,
            estimate=self.cost,
            prepare=self.preprocessor.prepare,
            forward=lambda samples: self.forward(samples, head),
            length=lambda s: s.length,
            max_batch_tokens=max_batch_tokens or self.max_batch_tokens,
            batch_size=batch_size if batch_size is not None else self.batch_size,
            pass_cost=default_pass_cost(self.runtime.device.type),
            group=lambda job: job.group if isinstance(job, Sample) else leading_text(job),
            on_error=on_error,
            pool=self.pool,
            stats=stats,
            show_progress=show_progress,
            total=total,
            desc=desc,
        )
        if stats.truncated:
            logger.warning("%d input(s) were longer than max_length=%d tokens; their text was truncated from the end "
                           "(template and images/videos kept)", stats.truncated, self.preprocessor.max_length)

    def collect(self, prompts: list[Prompt], head: Callable[[torch.Tensor], torch.Tensor], **kw) -> torch.Tensor:
        """All rows in input order (raises InputError on the first bad item)."""
        rows: list[torch.Tensor | None] = [None] * len(prompts)
        for pos, row in self.run(prompts, head, total=len(prompts), **kw):
            rows[pos] = row
        if not rows:
            return torch.empty(0)
        return torch.stack(rows)  # type: ignore[arg-type]
