"""compgen: combinatorial generalisation in disentangled generative models."""

__version__ = "0.1.0"
