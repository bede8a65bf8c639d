"""The mapping: its schema, the strict YAML reader, payload/profile parsing and resolution.

Import the submodules directly (``model_manager.mapping.loader``...); this package
file stays empty so that importing one of them does not load the others.
"""
