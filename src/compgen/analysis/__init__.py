"""Analysis of one trained run: its scores (`evaluate`, with the measures of compgen.metrics and the
latent oracle) and the figures that show them (`figures`, `run_figures`)."""
