"""Task `retrain`: encoder or decoder? (the original's scripts/experiments/finetune.py and
scripts/bin/run-retrain.sh). A trained composition (or unsupervised) run's backbone VAE is taken
over: one half keeps the base run's weights, frozen; the other starts afresh and is trained with
the plain VAE objective on single images of the same split.

If a freshly trained decoder renders held-out combinations well from a frozen encoder's latents,
the decoder was not the problem; if a fresh encoder cannot place them for a frozen decoder, the
encoder was. The study fills the model's architecture from the base run and passes the base's
model.pt as `run["base"]["model_path"]`; the DAG edge to it is real (rules/train.smk).
"""

from __future__ import annotations

from compgen.tasks.unsupervised import Unsupervised

# `retrain: decoder` trains a fresh decoder under the base's frozen encoder, and vice versa.
HALVES = ("encoder", "decoder")


class Retrain(Unsupervised):
    name = "retrain"

    def label(self, model_cfg):
        return f"{model_cfg['base']}, {model_cfg['retrain']} retrained"

    def initialise(self, model, run: dict) -> None:
        """Load the base run's backbone, keep the retrained half as freshly initialised (from the
        run's seed) and freeze the other half."""
        import torch

        from compgen.tasks import load_trained

        base_path = run.get("base", {}).get("model_path")
        if not base_path:
            raise ValueError(
                f"run {run['run_id']}: a retrain run needs its base run's model.pt (run['base'])"
            )
        base, _ = load_trained(base_path)
        backbone = getattr(base, "vae", base)  # a composition model holds its VAE as `vae`
        retrained = run["model"]["retrain"]
        frozen = next(half for half in HALVES if half != retrained)
        with torch.no_grad():
            getattr(model, frozen).load_state_dict(getattr(backbone, frozen).state_dict())
        for parameter in getattr(model, frozen).parameters():
            parameter.requires_grad_(False)


TASK = Retrain()
