"""Training: device-resident batches, triplet sampling, and the ignite training run."""

from compgen.training.run import train_run

__all__ = ["train_run"]
