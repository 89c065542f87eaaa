"""Faultline training: data, validation, the scikit-learn Pipeline, evaluation and bundles."""
