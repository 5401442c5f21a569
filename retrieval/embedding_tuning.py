"""Fine-tuning all-MiniLM-L6-v2 on a company's labelled history (plain torch + transformers).

The loss is supervised contrastive (SupCon, Khosla et al. 2020): each batch holds a few tickets of each of
several categories; every ticket is pulled towards the others of its category and pushed from the rest of
the batch. Unlike in-batch-negative ranking losses it copes with few categories (8 topic groups would put
same-category "negatives" in every batch). Pooling is the model's own (mean over tokens, L2 norm), so the
tuned weights export to int8 ONNX exactly like the shipped model
(:func:`retrieval.onnx_embedder.export_model`).

The budget is bounded twice: ``max_steps`` and ``max_seconds``; the embeddings and the lower layers are
frozen (fewer gradients, less drift from the shipped model on little data). torch is imported lazily.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
COPIED_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
)
"""The base model's files the tuned model keeps as they are (tokenizer and sentence-transformers layout)."""


@dataclass(frozen=True)
class TuneOptions:
    """How long and how hard to tune. The defaults fit ~6 minutes of one core for 10,000 tickets."""

    max_steps: int = 300
    max_seconds: float = 360.0
    batch_size: int = 32
    per_label: int = 4
    """Tickets of one category per batch (>= 2: each needs a positive)."""
    learning_rate: float = 3e-5
    temperature: float = 0.05
    max_seq_len: int = 64
    frozen_layers: int = 4
    """Transformer layers kept as shipped, with the token embeddings (MiniLM-L6 has 6)."""
    threads: int = 1
    seed: int = 0


@dataclass(frozen=True)
class TuneResult:
    model_dir: Path
    steps: int
    seconds: float
    final_loss: float
    options: TuneOptions
    cpu_seconds: float = 0.0
    """This process's CPU time for the tuning: the wall time on an otherwise idle core."""

    def stats(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "seconds": round(self.seconds, 1),
            "cpu_seconds": round(self.cpu_seconds, 1),
            "final_loss": round(self.final_loss, 4),
            "options": asdict(self.options),
        }


def sample_batch(
    by_label: Sequence[np.ndarray], rng: np.random.Generator, *, batch_size: int, per_label: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices and label ids of one batch: ``per_label`` tickets from each of several categories
    (categories drawn in proportion to the square root of their size, so small ones are seen too)."""
    usable = [index for index, rows in enumerate(by_label) if len(rows) >= 2]
    if len(usable) < 2:
        raise ValueError("tuning needs at least two categories with two tickets each")
    sizes = np.sqrt(np.array([len(by_label[index]) for index in usable], dtype=np.float64))
    labels_per_batch = max(2, min(len(usable), batch_size // max(2, per_label)))
    chosen = rng.choice(len(usable), size=labels_per_batch, replace=False, p=sizes / sizes.sum())
    rows: list[int] = []
    ids: list[int] = []
    for pick in chosen:
        label = usable[int(pick)]
        members = by_label[label]
        take = min(len(members), max(2, per_label))
        rows.extend(int(row) for row in rng.choice(members, size=take, replace=False))
        ids.extend([label] * take)
    return np.array(rows), np.array(ids)


def supcon_loss(embeddings: Any, label_ids: Any, temperature: float) -> Any:
    """Supervised contrastive loss over unit vectors (each anchor's mean log-likelihood of its positives)."""
    import torch

    similarity = embeddings @ embeddings.T / temperature
    count = embeddings.shape[0]
    self_mask = torch.eye(count, dtype=torch.bool, device=embeddings.device)
    similarity = similarity.masked_fill(self_mask, float("-inf"))
    log_prob = similarity - torch.logsumexp(similarity, dim=1, keepdim=True)
    positives = (label_ids[:, None] == label_ids[None, :]) & ~self_mask
    per_anchor = -(log_prob.masked_fill(~positives, 0.0).sum(dim=1)) / positives.sum(dim=1).clamp(min=1)
    return per_anchor[positives.any(dim=1)].mean()


def mean_pool(hidden: Any, attention_mask: Any) -> Any:
    import torch

    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1)


def _freeze(model: Any, layers: int) -> None:
    for parameter in model.embeddings.parameters():
        parameter.requires_grad = False
    for layer in model.encoder.layer[: max(0, layers)]:
        for parameter in layer.parameters():
            parameter.requires_grad = False


def _forward(model: Any, batch: Any, frozen_layers: int) -> Any:
    """The encoder's token vectors, the frozen part run without autograd (no graph kept for it: about a
    third faster per step with 2 of 6 layers frozen, more with 4)."""
    import torch

    layers = model.encoder.layer
    with torch.no_grad():
        hidden = model.embeddings(input_ids=batch["input_ids"], token_type_ids=batch.get("token_type_ids"))
        mask, _ = model._create_attention_masks(
            attention_mask=batch["attention_mask"],
            encoder_attention_mask=None,
            embedding_output=hidden,
            encoder_hidden_states=None,
            cache=None,
            position_ids=None,
        )
        for layer in layers[:frozen_layers]:
            hidden = layer(hidden, mask)
    for layer in layers[frozen_layers:]:
        hidden = layer(hidden, mask)
    return hidden


def tune(
    *,
    texts: Sequence[str],
    labels: Sequence[str],
    base_dir: Path,
    target_dir: Path,
    options: TuneOptions | None = None,
    progress: Progress | None = None,
) -> TuneResult:
    """Fine-tune the model in ``base_dir`` on ``texts``/``labels`` and write it to ``target_dir`` in the
    base's layout (safetensors weights + the base's tokenizer and pooling files), ready for ONNX export."""
    options = options or TuneOptions()
    if len(texts) != len(labels):
        raise ValueError("texts and labels differ in length")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(options.threads)
    torch.manual_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    names = sorted(set(labels))
    label_ids = np.array([names.index(label) for label in labels])
    by_label = [np.flatnonzero(label_ids == index) for index in range(len(names))]
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    model = AutoModel.from_pretrained(str(base_dir), attn_implementation="eager")
    _freeze(model, options.frozen_layers)
    model.train()
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=options.learning_rate, weight_decay=0.01)
    warmup = max(1, options.max_steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
    started, cpu_started = time.monotonic(), time.process_time()
    steps = 0
    recent: list[float] = []
    try:
        while steps < options.max_steps and time.monotonic() - started < options.max_seconds:
            rows, ids = sample_batch(
                by_label, rng, batch_size=options.batch_size, per_label=options.per_label
            )
            batch = tokenizer(
                [str(texts[row]) for row in rows],
                padding=True,
                truncation=True,
                max_length=options.max_seq_len,
                return_tensors="pt",
            )
            hidden = _forward(model, batch, options.frozen_layers)
            loss = supcon_loss(
                mean_pool(hidden, batch["attention_mask"]), torch.as_tensor(ids), options.temperature
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            scheduler.step()
            steps += 1
            recent = [*recent[-19:], float(loss.detach())]
            if progress:
                progress(steps, options.max_steps)
        model.eval()
        target_dir.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(target_dir), safe_serialization=True)
        for relative in COPIED_FILES:
            source = base_dir / relative
            if source.is_file():
                (target_dir / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target_dir / relative)
    finally:
        torch.set_num_threads(previous_threads)
    seconds, cpu_seconds = time.monotonic() - started, time.process_time() - cpu_started
    final = float(np.mean(recent)) if recent else float("nan")
    logger.info("embedding model tuned: %d steps in %.0f s, loss %.3f", steps, seconds, final)
    return TuneResult(
        model_dir=target_dir,
        steps=steps,
        seconds=seconds,
        final_loss=final,
        options=options,
        cpu_seconds=cpu_seconds,
    )
