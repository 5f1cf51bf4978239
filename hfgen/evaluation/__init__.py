"""Evaluation every family shares: named judges, FID/KID/precision-recall, bits/dim, reference rows."""

from .evaluator import Evaluation, Evaluator
from .feature_extractor import FeatureExtractor, FeatureExtractorConfig, load_feature_extractor, train_feature_extractor
from .judges import JUDGES, Judge, load_judge
from .likelihood import bits_per_dim, log_likelihood
from .metrics import GenerativeMetrics, precision_recall
from .splits import EvaluationData

__all__ = [
    "JUDGES",
    "Evaluation",
    "EvaluationData",
    "Evaluator",
    "FeatureExtractor",
    "FeatureExtractorConfig",
    "GenerativeMetrics",
    "Judge",
    "bits_per_dim",
    "load_feature_extractor",
    "load_judge",
    "log_likelihood",
    "precision_recall",
    "train_feature_extractor",
]
