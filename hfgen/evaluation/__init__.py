"""Evaluation every family shares: one feature extractor, FID/KID/precision-recall, bits/dim, reference rows."""

from .evaluate import EvaluateArguments, Evaluator, evaluate
from .feature_extractor import FeatureExtractor, FeatureExtractorConfig, load_feature_extractor, train_feature_extractor
from .likelihood import bits_per_dim, log_likelihood
from .metrics import GenerativeMetrics, precision_recall

__all__ = [
    "EvaluateArguments",
    "Evaluator",
    "FeatureExtractor",
    "FeatureExtractorConfig",
    "GenerativeMetrics",
    "bits_per_dim",
    "evaluate",
    "load_feature_extractor",
    "log_likelihood",
    "precision_recall",
    "train_feature_extractor",
]
