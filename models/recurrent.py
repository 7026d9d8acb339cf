"""NumPy forward pass of a masked bidirectional LSTM with max-pooling, as Keras computes it.

Used by the sequence part of the supervised heads, so it runs without TensorFlow at
inference. The weight layout lives here too: :func:`export_bilstm` reads a trained Keras
``Bidirectional(LSTM)`` into it and :func:`bilstm_directions` hands it to the forward pass.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # same as 1/(1+e^-x), without overflow warnings


def lstm_direction(xw: np.ndarray, rec: np.ndarray, lengths: np.ndarray, backwards: bool) -> np.ndarray:
    """Run one LSTM direction over (B, T, 4U) pre-projected inputs; returns (B, T, U).

    Rows must be sorted by descending length: at step t only the first rows (those
    longer than t) are live, so each step works on a prefix and padding costs nothing.
    The backward direction thus starts at each row's last real token with a zero
    state, as Keras does with a mask. Keras gate order is i, f, c, o.
    """
    B, T, G = xw.shape
    U = G // 4
    h = np.zeros((B, U), np.float32)
    c = np.zeros((B, U), np.float32)
    out = np.zeros((B, T, U), np.float32)
    live = np.searchsorted(-lengths, -np.arange(T), side="left")  # rows with length > t
    for t in range(T - 1, -1, -1) if backwards else range(T):
        n = int(live[t])
        if n == 0:
            continue
        z = xw[:n, t] + h[:n] @ rec
        i = sigmoid(z[:, :U])
        f = sigmoid(z[:, U : 2 * U])
        g = np.tanh(z[:, 2 * U : 3 * U])
        o = sigmoid(z[:, 3 * U :])
        cn = f * c[:n] + i * g
        c[:n] = cn
        h[:n] = o * np.tanh(cn)
        out[:n, t] = h[:n]
    return out


def bilstm_max_pool(
    emb: np.ndarray, lengths: np.ndarray, directions: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
) -> np.ndarray:
    """(B, 2U) max over the real time steps of a BiLSTM's outputs.

    ``emb`` is (B, T, E) with rows sorted by descending ``lengths`` (every length ≥ 1);
    ``directions`` holds (kernel, recurrent, bias) of the forward and backward LSTM.
    """
    T = emb.shape[1]
    seqs = [
        lstm_direction(emb @ kernel + bias, rec, lengths, backwards)
        for (kernel, rec, bias), backwards in zip(directions, (False, True), strict=True)
    ]
    seq = np.concatenate(seqs, axis=-1)
    valid = (np.arange(T)[None, :] < lengths[:, None])[..., None]
    return np.where(valid, seq, -1e9).max(axis=1)


BILSTM_PARTS = ("fw_kernel", "fw_recurrent", "fw_bias", "bw_kernel", "bw_recurrent", "bw_bias")


def export_bilstm(bidirectional) -> dict[str, np.ndarray]:
    """The weights of a Keras ``Bidirectional(LSTM)`` layer, named as :data:`BILSTM_PARTS`."""
    out: dict[str, np.ndarray] = {}
    for name, layer in (("fw", bidirectional.forward_layer), ("bw", bidirectional.backward_layer)):
        k, r, b = layer.get_weights()
        out[f"{name}_kernel"], out[f"{name}_recurrent"], out[f"{name}_bias"] = k, r, b
    return {k: np.asarray(v, np.float32) for k, v in out.items()}


def bilstm_directions(weights: dict[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(kernel, recurrent, bias) of the forward and backward LSTM, for :func:`bilstm_max_pool`."""
    return [(weights[f"{d}_kernel"], weights[f"{d}_recurrent"], weights[f"{d}_bias"]) for d in ("fw", "bw")]
