"""The engine the embedder and the reranker share: tokenizer, preprocessor, backbone, batching loop."""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator

import torch

from . import media
from .batching import RunStats, default_pass_cost, default_workers, run_batches
from .inputs import TextPart
from .model import Backbone, resolve_model_path
from .preprocess import Preprocessor, Sample, leading_text
from .prompts import Fixed, Prompt
from .runtime import resolve_runtime
from .settings import ModelSettings

logger = logging.getLogger(__name__)

class Engine:
    """Loads a checkpoint once and turns prompts into last-token hidden states, batch by batch."""

    def __init__(self, model_name_or_path: str, settings: ModelSettings):
        from transformers import AutoTokenizer

        self.settings = settings
        self.runtime = resolve_runtime(settings.device, settings.dtype, settings.attn_implementation,
                                       settings.quantize, settings.threads)
        self.path = resolve_model_path(model_name_or_path, settings.revision)
        self.name = str(model_name_or_path)
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.backbone = Backbone(self.path, self.runtime)
        self.preprocessor = Preprocessor(self.tokenizer, settings.vision, settings.max_length,
                                         settings.media_policy or media.DEFAULT_POLICY)
        self.max_batch_tokens = settings.max_batch_tokens
        self.batch_size = settings.batch_size
        self.workers = settings.workers
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


class LoadedModel:
    """What Qwen3VLEmbedder and Qwen3VLReranker share: an engine loaded from `ModelSettings`, the facts
    about it, and the pre / core steps the server's batcher drives (the model classes add their heads)."""

    defaults: ModelSettings  # the settings `from_settings(model)` uses: settings.EMBEDDER or settings.RERANKER

    def __init__(self, model_name_or_path: str, settings: ModelSettings):
        self.settings = settings
        self.engine = Engine(model_name_or_path, settings)
        self.engine.share_prefixes()
        self._loaded()

    @classmethod
    def from_settings(cls, model_name_or_path: str, settings: ModelSettings | None = None):
        """The model built from one `ModelSettings` (default: the class's `defaults`, the official ones)."""
        self = cls.__new__(cls)
        LoadedModel.__init__(self, model_name_or_path, settings or cls.defaults)
        return self

    def _loaded(self) -> None:
        """Set-up a model class needs once its engine is loaded (the reranker's score weights)."""

    # facts -----------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The model as it was asked for: a hub id or a local folder."""
        return self.engine.name

    @property
    def model_path(self) -> str:
        """The local folder its files were read from."""
        return self.engine.path

    @property
    def runtime(self):
        """The device, dtype and attention implementation it runs with (`runtime.Runtime`)."""
        return self.engine.runtime

    @property
    def device(self):
        return self.engine.runtime.device

    @property
    def quantize(self) -> str | None:
        """The weights' quantisation: None (as released) or "int8"."""
        return self.engine.runtime.quantize

    @property
    def media_policy(self) -> media.MediaPolicy:
        return self.engine.preprocessor.policy

    @property
    def text_tokenizer(self) -> Any:
        """The fast tokenizer (`tokenizers.Tokenizer`) that splits texts into tokens, e.g. into chunks."""
        return self.engine.tokenizer.backend_tokenizer

    @property
    def last_stats(self) -> RunStats:
        """Counts, tokens, padding efficiency and time of the last call."""
        return self.engine.last_stats

    # the official attributes, read from the settings
    max_length = property(lambda self: self.settings.max_length)
    min_pixels = property(lambda self: self.settings.min_pixels)
    max_pixels = property(lambda self: self.settings.max_pixels, doc="Pixel budget of one image.")
    total_pixels = property(lambda self: self.settings.total_pixels)
    fps = property(lambda self: self.settings.fps)
    max_frames = property(lambda self: self.settings.max_frames)
    default_instruction = property(lambda self: self.settings.default_instruction)

    # pre / core ------------------------------------------------------------------------------------
    def costed(self, prompt: Prompt) -> tuple[Prompt | Sample, int]:
        """The job to run for `prompt` and its token cost. A text-only prompt is tokenised here, once
        (running it then only runs the model); a prompt with media is costed from headers and read when
        it runs. A prompt that cannot be costed costs 1: its error is reported when it is prepared."""
        try:
            cost = self.engine.cost(prompt)
        except Exception:  # noqa: BLE001 - a bad item is reported when it is prepared, with its cause
            return prompt, 1
        return (cost, cost.length) if isinstance(cost, Sample) else (prompt, int(cost))

    def run_jobs(self, jobs: Iterable[Prompt | Sample], head: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 **options: Any) -> Iterator[tuple[int, torch.Tensor]]:
        """(position, head(last hidden state)) per job as batches finish: the library's one batching loop.
        `head` None yields the raw hidden states. `options`: those of `Engine.run`."""
        return self.engine.run(jobs, head or _raw, **options)


def _raw(hidden: torch.Tensor) -> torch.Tensor:
    return hidden
