"""Provenance: input hashes, environment capture, run manifests."""

from ._manifest import TIMESTAMP_KEYS, build_manifest, environment, file_sha256

__all__ = ["TIMESTAMP_KEYS", "build_manifest", "environment", "file_sha256"]
