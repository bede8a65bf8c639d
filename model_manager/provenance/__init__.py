"""Provenance on plain data: signatures, NPZ outputs, the run manifest and its audit."""

from model_manager.provenance.outputs import audit_run_dir, read_npz_meta, save_npz, write_manifest

__all__ = ["audit_run_dir", "read_npz_meta", "save_npz", "write_manifest"]
