"""Optical flow in TSN's encoding: OpenCV methods, TV-L1 in PyTorch, and dataset preparation."""
