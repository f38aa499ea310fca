"""Explanations computed on minivgg's own layers: Grad-CAM, Kernel-SHAP, rendering and checks."""

from .gradcam import GradCAM, upsample_bilinear
from .kernelshap import KernelSHAP, shapley_kernel_weight
from .regions import grid_regions, superpixels

__all__ = ["GradCAM", "KernelSHAP", "shapley_kernel_weight", "upsample_bilinear", "grid_regions", "superpixels"]
