"""Experiments over many training runs: the paper's tables and figures, and the sampling study."""
