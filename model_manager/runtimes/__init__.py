"""Runtime handles (Triton, ONNX Runtime, torch) that a component calls; filled by the runtime issues."""
