"""torch + transformers model code: one idea per file."""
