"""Provenance on plain data: signatures, NPZ outputs, the run manifest and its audit.

``ModelManager.run_record()`` and ``ModelManager.npz_meta_for(component)`` build the data; this
package writes it (crash-safe, several writers per run) and audits a run folder against it.
It never imports the manager. See docs/provenance.md.
"""

from model_manager.provenance.audit import AuditReport, audit_run_dir
from model_manager.provenance.manifest import save_output, write_manifest
from model_manager.provenance.npz import save_npz
from model_manager.provenance.npz_read import read_npz_meta
from model_manager.provenance.record import OutputRecord

__all__ = ["AuditReport", "OutputRecord", "audit_run_dir", "read_npz_meta", "save_npz", "save_output",
           "write_manifest"]
