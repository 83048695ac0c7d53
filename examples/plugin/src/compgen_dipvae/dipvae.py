"""The DIP-VAE-I objective (torch); declared in compgen_dipvae.DIP_VAE_I."""

import torch

from compgen.losses import Objective, kl_divergence_per_image


def mean_covariance(mu: torch.Tensor) -> torch.Tensor:
    """Cov[mu] over the batch: E[mu mu^T] - E[mu] E[mu]^T (d x d)."""
    mu = mu.float()
    centred = mu - mu.mean(0, keepdim=True)
    return centred.T @ centred / mu.shape[0]


class DIPVAEILoss(Objective):
    """KL + lambda_od * sum_{i != j} Cov[mu]_ij^2 + lambda_d * sum_i (Cov[mu]_ii - 1)^2."""

    def penalty(self, mu, logvar, z, step):
        kl = kl_divergence_per_image(mu, logvar).mean()
        cov = mean_covariance(mu)
        diagonal = torch.diagonal(cov)
        off_diagonal = (cov.pow(2).sum() - diagonal.pow(2).sum()) if mu.shape[0] > 1 else cov.new_zeros(())
        on_diagonal = (diagonal - 1).pow(2).sum() if mu.shape[0] > 1 else cov.new_zeros(())
        dip = self.lambda_od * off_diagonal + self.lambda_d * on_diagonal
        return kl + dip, {"kl": kl, "dip_od": off_diagonal, "dip_d": on_diagonal}
