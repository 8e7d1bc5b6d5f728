"""The studio: a no-code fine-tuning studio for language models."""

__version__ = "0.1.0"
