"""Convolutional VAE over 36×36×4 emoji pictures with a 16-d Gaussian latent.

Encoder and decoder are separate functional models (as in the keras-io VAE example); the
loss lives in ``train_step``/``test_step`` with named trackers so ``fit()`` and callbacks work.
The emoji's *code* is the posterior mean, which is finite by construction: the log-variance
is clipped before it is exponentiated, so no code can overflow to ``inf`` (the blog's
codes were 4% ``inf``).
"""

from __future__ import annotations

import keras
from keras import layers, ops

LATENT_DIM = 16
PICTURE_SHAPE = (36, 36, 4)
LOG_VAR_CLIP = 10.0


class Sampling(layers.Layer):
    """z = mean + exp(log_var / 2) * eps."""

    def __init__(self, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps


def build_encoder(latent_dim: int = LATENT_DIM) -> keras.Model:
    x_in = keras.Input(PICTURE_SHAPE, name="picture")
    x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x_in)
    x = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    z_log_var = layers.Lambda(lambda t: ops.clip(t, -LOG_VAR_CLIP, LOG_VAR_CLIP), name="clip")(z_log_var)
    return keras.Model(x_in, [z_mean, z_log_var], name="vae_encoder")


def build_decoder(latent_dim: int = LATENT_DIM) -> keras.Model:
    z_in = keras.Input((latent_dim,), name="code")
    x = layers.Dense(128, activation="relu")(z_in)
    x = layers.Dense(9 * 9 * 64, activation="relu")(x)
    x = layers.Reshape((9, 9, 64))(x)
    x = layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2DTranspose(PICTURE_SHAPE[-1], 3, padding="same", activation="sigmoid")(x)
    return keras.Model(z_in, x, name="vae_decoder")


class EmojiVAE(keras.Model):
    """VAE with the reconstruction (binary cross-entropy, summed over pixels) + KL loss."""

    def __init__(self, encoder: keras.Model, decoder: keras.Model, beta: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.sampling = Sampling()
        self.beta = beta
        self.total_tracker = keras.metrics.Mean(name="loss")
        self.recon_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_tracker, self.recon_tracker, self.kl_tracker]

    def _vae_losses(self, x, training: bool):
        z_mean, z_log_var = self.encoder(x, training=training)
        z = self.sampling([z_mean, z_log_var]) if training else z_mean
        recon = self.decoder(z, training=training)
        bce = keras.losses.binary_crossentropy(x, recon)  # mean over channels
        recon_loss = ops.mean(ops.sum(bce, axis=(1, 2))) * PICTURE_SHAPE[-1]
        kl = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
        kl_loss = ops.mean(ops.sum(kl, axis=1))
        return recon_loss, kl_loss

    def train_step(self, data):
        import tensorflow as tf

        x = data[0] if isinstance(data, tuple) else data
        with tf.GradientTape() as tape:
            recon_loss, kl_loss = self._vae_losses(x, training=True)
            total = recon_loss + self.beta * kl_loss
        grads = tape.gradient(total, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=False))
        return self._update(total, recon_loss, kl_loss)

    def test_step(self, data):
        x = data[0] if isinstance(data, tuple) else data
        recon_loss, kl_loss = self._vae_losses(x, training=False)
        return self._update(recon_loss + self.beta * kl_loss, recon_loss, kl_loss)

    def _update(self, total, recon_loss, kl_loss):
        self.total_tracker.update_state(total)
        self.recon_tracker.update_state(recon_loss)
        self.kl_tracker.update_state(kl_loss)
        return {m.name: m.result() for m in self.metrics}

    def call(self, x):
        z_mean, _ = self.encoder(x)
        return self.decoder(z_mean)
