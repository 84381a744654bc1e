"""The ExpertSteer demo's target: a narrower, shallower byte-level model (d_model 96,
3 layers) trained on the same text as ``configs/steer_expert_tiny.py``; the two differ in
width, so the alignment step has work to do.
"""

from configs.steer_expert_tiny import get_config as expert_config


def get_config():
    return expert_config(width=96, layers=3, ffn=256)
