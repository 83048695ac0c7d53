"""Scores of trained representations (metrics) and the figures that show them (figures)."""
