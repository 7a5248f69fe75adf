"""A real, tiny ONNX Runtime GenAI chat model made from local text, with no model hub and no download."""
