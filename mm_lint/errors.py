"""The linter's errors in one place: ``lint_config_invalid``, ``license_inventory_invalid`` and
``lint_fix_unavailable``.

The codes stay in model_manager's one table of codes (docs/errors.md is generated from it and the
runtime shares the taxonomy); every mm_lint module takes them, and their exception classes, from here.
"""

from __future__ import annotations

from model_manager.error_codes import LICENSE_INVENTORY_INVALID, LINT_CONFIG_INVALID, LINT_FIX_UNAVAILABLE
from model_manager.errors import (
    InvalidModelSpec,
    LicenseInventoryInvalid,
    LintConfigInvalid,
    LintFixUnavailable,
    ModelManagerError,
)

#: the codes the linter itself raises (exit status 2 from ``mm-lint``)
LINT_CODES: tuple[str, ...] = (LINT_CONFIG_INVALID, LICENSE_INVENTORY_INVALID, LINT_FIX_UNAVAILABLE)

__all__ = ["LICENSE_INVENTORY_INVALID", "LINT_CODES", "LINT_CONFIG_INVALID", "LINT_FIX_UNAVAILABLE",
           "InvalidModelSpec", "LicenseInventoryInvalid", "LintConfigInvalid", "LintFixUnavailable",
           "ModelManagerError"]
