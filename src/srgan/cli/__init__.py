"""Command-line interface: `srgan upscale | train | plot | eval ...`."""
