"""Provenance: input hashes, environment capture, run manifests."""

from ._manifest import (
    TIMESTAMP_KEYS,
    build_manifest,
    combined_digest,
    environment,
    file_sha256,
    hash_files,
)

__all__ = [
    "TIMESTAMP_KEYS",
    "build_manifest",
    "combined_digest",
    "environment",
    "file_sha256",
    "hash_files",
]
