"""Local artifacts: paths under the models root, weights digests and the digest cache."""
