"""Evaluation: run models on benchmark folders (or score other tools' outputs) with the protocol
and the perceptual metrics of `srgan.metrics`, and draw comparison figures. Above inference:
it loads and runs models; `srgan.metrics` stays pure.
"""
