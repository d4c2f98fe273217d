"""Training data: HR folders, the bicubic degradation, random aligned crops."""
