"""Hyper-parameter search (``roam tune``): search spaces from YAML (space.py) and an Optuna
study on validation MRR, pruned and resumable (search.py). Optuna is an optional extra."""
