"""Dataset registry and download (installed as ``roam_datasets``; no bulk data lives here)."""

from roam_datasets.registry import REGISTERED, SYNTHETIC, DatasetSpec, RemoteFile, get_spec

__all__ = ["REGISTERED", "SYNTHETIC", "DatasetSpec", "RemoteFile", "get_spec"]
