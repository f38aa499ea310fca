"""Explanations computed on minivgg's own layers: Grad-CAM, Kernel-SHAP, rendering and checks."""

from minivgg.explain.coalitions import PairSampler, shapley_kernel_weight
from minivgg.explain.gradcam import GradCAM, upsample_bilinear
from minivgg.explain.kernelshap import KernelSHAP, SHAPResult
from minivgg.explain.regions import background_mask, grid_regions, superpixels
from minivgg.explain.shapley import ShapleyEstimate, explain_function, shapley_rounds

__all__ = ["GradCAM", "KernelSHAP", "SHAPResult", "ShapleyEstimate", "PairSampler", "explain_function",
           "shapley_rounds", "shapley_kernel_weight", "upsample_bilinear", "background_mask", "grid_regions",
           "superpixels"]
