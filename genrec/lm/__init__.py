"""Language models: loading, scratch models, fine-tuning, generation."""
