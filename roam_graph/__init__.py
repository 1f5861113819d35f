"""roam-graph: ROAM multimodal knowledge-graph completion on DGL + PyTorch.

Flow of the package: ``data`` (files -> tensors) -> ``graph`` (DGL heterograph, cache) ->
``sampling`` -> ``model`` -> ``training`` -> ``evaluation`` -> reports.
"""

from roam_graph._stack import check_stack

check_stack()

__version__ = "0.1.0"
