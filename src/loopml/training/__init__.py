"""Training: fit and cross-validate estimators on dataset versions; tune with Optuna."""
