"""The Gradio web UI, built from a model card and a predict function."""
