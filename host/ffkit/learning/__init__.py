"""Learning on the host: bootstrap training, personalisation protocols, evaluation, float
baselines, anomaly evaluation, the River estimator, model configuration.
"""
