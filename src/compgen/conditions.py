"""Conditions: filters on factor values or classes -> train/test masks -> split index files."""
