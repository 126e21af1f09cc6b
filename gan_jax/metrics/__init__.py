"""Evaluation metrics for generated images and the feature extractors they use."""
