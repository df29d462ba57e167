"""Training: the composite reward (rewards.py); SFT and GRPO arrive with the training issue."""
