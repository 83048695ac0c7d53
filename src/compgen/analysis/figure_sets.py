"""Which per-run figures each task has (light: the workflow imports it while planning)."""

# What each task can show: regressors reconstruct nothing, ground-truth decoders have no encoder.
FIGURES_BY_TASK = {
    "unsupervised": ("curves", "reconstructions", "hinton", "latents", "traversals"),
    "composition": ("curves", "reconstructions", "hinton", "latents", "traversals"),
    "supervised": ("curves", "hinton", "latents"),
    "gt_decoder": ("curves", "reconstructions"),
}
