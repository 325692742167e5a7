"""Hand-written canonical-layout attention in JAX and in TensorFlow (bare functions).

attnconf run --sdpa example_jax_tf_sdpa:jax_sdpa --framework jax
attnconf run --sdpa example_jax_tf_sdpa:tf_sdpa --framework tensorflow
Neither takes enable_gqa, so GQA cases are unsupported; fully-masked rows are not handled.
"""
import math


def jax_sdpa(query, key, value, *, attn_mask=None, is_causal=False, scale=None):
    import jax
    import jax.numpy as jnp

    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    logits = jnp.einsum("bhle,bhse->bhls", query, key) * scale
    if attn_mask is not None:
        logits = jnp.where(attn_mask, logits, -jnp.inf) if attn_mask.dtype == bool else logits + attn_mask
    if is_causal:
        L, S = logits.shape[-2:]
        logits = jnp.where(jnp.tril(jnp.ones((L, S), bool)), logits, -jnp.inf)
    return jnp.einsum("bhls,bhsv->bhlv", jax.nn.softmax(logits, axis=-1), value)


def tf_sdpa(query, key, value, *, attn_mask=None, is_causal=False, scale=None):
    import tensorflow as tf

    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    # tf.constant(x, dtype), not tf.cast(x, dtype): the cast of a Python float goes through float32
    logits = tf.einsum("bhle,bhse->bhls", query, key) * tf.constant(scale, dtype=query.dtype)
    if attn_mask is not None:
        if attn_mask.dtype == tf.bool:
            logits = tf.where(attn_mask, logits, tf.cast(-float("inf"), logits.dtype))
        else:
            logits = logits + attn_mask
    if is_causal:
        L, S = logits.shape[-2:]
        visible = tf.linalg.band_part(tf.ones((L, S), tf.bool), -1, 0)
        logits = tf.where(visible, logits, tf.cast(-float("inf"), logits.dtype))
    return tf.einsum("bhls,bhsv->bhlv", tf.nn.softmax(logits, axis=-1), value)
