"""Evaluation every family shares: one feature extractor, FID/KID/precision-recall, bits/dim, reference rows."""

from .evaluator import Evaluation, Evaluator
from .feature_extractor import FeatureExtractor, FeatureExtractorConfig, load_feature_extractor, train_feature_extractor
from .likelihood import bits_per_dim, log_likelihood
from .metrics import GenerativeMetrics, precision_recall

__all__ = [
    "Evaluation",
    "Evaluator",
    "FeatureExtractor",
    "FeatureExtractorConfig",
    "GenerativeMetrics",
    "bits_per_dim",
    "load_feature_extractor",
    "log_likelihood",
    "precision_recall",
    "train_feature_extractor",
]
