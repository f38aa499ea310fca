"""Synthetic posteroanterior hand radiographs ("phantoms") with known rheumatoid lesions.

No open data set of adult RA and healthy hand radiographs may be shipped, and
explanation methods need ground truth, so minivgg draws its own. Each phantom is a
hand, fingers up, wrist at the bottom:

* soft tissue: forearm, palm and fingers as rounded bodies of low density;
* bones: radius, ulna, eight carpals, five metacarpals and fourteen phalanges. Each long
  bone is a capsule along a segment whose half-width flares at both ends (shaft and
  epiphyses). It is projected like a tube: a dense cortical shell over a lighter
  trabecular core with a fine random texture, which draws the bright cortical
  margins of a real radiograph;
* joints: the gap between neighbouring bone ends is the radiographic joint space.

Variation: hand size, position and rotation, finger spread and lengths, bone widths,
exposure (contrast and gamma), blur and quantum-like noise.

Class ``RA`` has rheumatoid changes at a random subset of the wrist, MCP and PIP joints
(2 to 5 of them, each with its own severity):

* joint-space narrowing (the two bone ends move towards each other),
* marginal erosions (bites out of the cortex at the bone's edge next to the joint),
* periarticular osteopenia (bone near the joint loses density).

Class ``Normal`` has none. Every phantom comes with a lesion mask (1 where a change was
drawn), which is the ground truth for Grad-CAM and SHAP checks. Everything is
deterministic given the seed.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from .atomic import atomic_write

CLASS_NAMES = ("Normal", "RA")


@dataclass
class Bone:
    a: np.ndarray            # proximal end (x, y), image units in [0, 1]
    b: np.ndarray            # distal end
    radius: float            # half-width of the shaft
    flare: float = 0.25      # extra half-width at the ends, as a fraction of the shaft
    density: float = 1.0     # multiplied by osteopenia
    erosions: list = field(default_factory=list)   # [(centre (x, y), radius)]


def _rotation(theta):
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def _segment_geometry(px, py, a, b):
    """Distance from each pixel to segment a-b, and the position t in [0, 1] along it."""
    d = b - a
    t = np.clip(((px - a[0]) * d[0] + (py - a[1]) * d[1]) / (d @ d), 0.0, 1.0)
    return np.hypot(px - (a[0] + t * d[0]), py - (a[1] + t * d[1])), t


def _chord(r, dist):
    """Path length through a cylinder of radius r at distance ``dist`` from its axis."""
    return 2.0 * np.sqrt(np.clip(r * r - dist * dist, 0.0, None))


def _band_noise(shape, rng, sigma_fine, sigma_coarse):
    """Band-passed white noise with unit standard deviation (the trabecular texture)."""
    w = rng.standard_normal(shape)
    n = ndimage.gaussian_filter(w, sigma_fine) - ndimage.gaussian_filter(w, sigma_coarse)
    return n / (n.std() + 1e-12)


def _finger_chain(base, direction, lengths, radii, gap):
    """Bones laid end to end from ``base`` along ``direction`` with joint gaps ``gap[i]``."""
    bones, p = [], base.copy()
    for length, r, g in zip(lengths, radii, gap):
        q = p + direction * length
        bones.append(Bone(p.copy(), q, r))
        p = q + direction * g
    return bones


def hand_anatomy(rng):
    """Bones, soft-tissue bodies and named joints of one random hand (image units)."""
    scale = rng.uniform(0.82, 0.98)
    centre = np.array([0.5, 0.58]) + rng.uniform(-0.03, 0.03, 2)
    rot = _rotation(np.deg2rad(rng.uniform(-12, 12)))
    spread = rng.uniform(0.7, 1.3)
    gap0 = rng.uniform(0.011, 0.016)          # this hand's normal joint space

    def place(p):
        return centre + scale * (rot @ (np.asarray(p, float) - np.array([0.5, 0.56])))

    bones, joints, soft = {}, {}, []
    # Forearm: radius (thumb side, left on a right hand seen PA) and ulna.
    bones["radius"] = Bone(np.array([0.43, 1.1]), np.array([0.445, 0.79]), 0.047, flare=0.45)
    bones["ulna"] = Bone(np.array([0.585, 1.1]), np.array([0.575, 0.805]), 0.032, flare=0.3)
    soft.append((np.array([0.5, 1.15]), np.array([0.5, 0.8]), 0.16))
    # Carpals: two rows of rounded bones.
    for i, (x, y, r) in enumerate([(0.425, 0.745, 0.03), (0.485, 0.74, 0.028), (0.54, 0.745, 0.024),
                                   (0.585, 0.75, 0.02), (0.40, 0.69, 0.025), (0.455, 0.685, 0.025),
                                   (0.515, 0.685, 0.03), (0.575, 0.69, 0.027)]):
        c = np.array([x, y]) + rng.normal(0, 0.003, 2)
        bones[f"carpal{i}"] = Bone(c - [0, 0.006], c + [0, 0.006], r * rng.uniform(0.9, 1.1), flare=0.0)
    joints["wrist"] = ("radius", "carpal0")
    soft.append((np.array([0.5, 0.78]), np.array([0.5, 0.55]), 0.17))      # palm
    # Thumb: metacarpal and two phalanges, angled out.
    tdir = _rotation(np.deg2rad(-38 * spread)) @ np.array([0.0, -1.0])
    thumb = _finger_chain(np.array([0.40, 0.655]), tdir, [0.13, 0.085, 0.06], [0.018, 0.016, 0.013],
                          [gap0, gap0, 0])
    for name, bone in zip(["mc1", "pp1", "dp1"], thumb):
        bones[name] = bone
    joints["mcp1"] = ("mc1", "pp1")
    soft.append((thumb[0].a, thumb[-1].b, 0.048))
    # Fingers 2-5: metacarpal, proximal, middle and distal phalanx.
    for k, (x0, angle, length) in enumerate([(0.445, -9, 1.0), (0.495, -2, 1.06), (0.545, 5, 1.0), (0.59, 13, 0.84)]):
        direction = _rotation(np.deg2rad(angle * spread + rng.normal(0, 1.5))) @ np.array([0.0, -1.0])
        f = length * rng.uniform(0.95, 1.05)
        chain = _finger_chain(np.array([x0, 0.655]), direction,
                              [0.2 * f, 0.13 * f, 0.08 * f, 0.055 * f], [0.017, 0.015, 0.012, 0.01],
                              [gap0, gap0 * 0.9, gap0 * 0.8, 0])
        names = [f"mc{k + 2}", f"pp{k + 2}", f"mp{k + 2}", f"dp{k + 2}"]
        for name, bone in zip(names, chain):
            bones[name] = bone
        joints[f"mcp{k + 2}"] = (names[0], names[1])
        joints[f"pip{k + 2}"] = (names[1], names[2])
        soft.append((chain[1].a, chain[-1].b + direction * 0.01, 0.03 * f ** 0.5))
    width = rng.uniform(0.9, 1.12)
    for bone in bones.values():
        bone.a, bone.b = place(bone.a), place(bone.b)
        bone.radius *= scale * width
    soft = [(place(a), place(b), r * scale) for a, b, r in soft]
    return bones, joints, soft


def _apply_ra(bones, joints, rng, size):
    """Draw rheumatoid changes at 1-4 random joints; returns the lesion mask (size x size)."""
    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size
    mask = np.zeros((size, size), dtype=bool)
    names = list(joints)
    chosen = rng.choice(len(names), size=rng.integers(2, 6), replace=False)
    osteopenia = []
    for j in chosen:
        proximal, distal = (bones[n] for n in joints[names[j]])
        severity = rng.uniform(0.5, 1.0)
        # Joint-space narrowing: pull the distal bone (and its chain) towards the proximal one.
        joint_centre = (proximal.b + distal.a) / 2
        gap = np.linalg.norm(distal.a - proximal.b)
        shift = (proximal.b - distal.a) / max(gap, 1e-9) * gap * 0.85 * severity
        distal.a = distal.a + shift
        # Marginal erosions: bites at the edges of both bone ends next to the joint.
        for bone, end in ((proximal, proximal.b), (distal, distal.a)):
            axis = (bone.b - bone.a) / np.linalg.norm(bone.b - bone.a)
            normal = np.array([-axis[1], axis[0]])
            inward = -axis if end is bone.b else axis
            for _ in range(rng.integers(1, 3)):
                side = rng.choice([-1.0, 1.0])
                r_end = bone.radius * (1 + bone.flare)
                centre = end + inward * r_end * rng.uniform(0.4, 1.1) + side * normal * r_end * rng.uniform(0.8, 1.0)
                radius = r_end * rng.uniform(0.5, 0.8) * (0.6 + 0.4 * severity)
                bone.erosions.append((centre, radius))
                mask |= np.hypot(xx - centre[0], yy - centre[1]) < radius * 1.3
        osteopenia.append((joint_centre, 0.06, 0.6 * severity))
        mask |= np.hypot(xx - joint_centre[0], yy - joint_centre[1]) < max(gap, 0.02) * 1.5
    return mask, osteopenia


def render_hand(rng, size=256, ra=False):
    """One phantom: ``(image, mask)``, float32 image in [0, 1] and a boolean lesion mask."""
    bones, joints, soft = hand_anatomy(rng)
    mask = np.zeros((size, size), dtype=bool)
    osteopenia = []
    if ra:
        mask, osteopenia = _apply_ra(bones, joints, rng, size)
    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size
    tissue = np.zeros((size, size))
    for a, b, r in soft:
        dist, _ = _segment_geometry(xx, yy, a, b)
        tissue = np.maximum(tissue, _chord(r, dist))
    texture = _band_noise((size, size), rng, 0.6 * size / 256, 2.5 * size / 256)
    bone_density = np.zeros((size, size))
    for bone in bones.values():
        dist, t = _segment_geometry(xx, yy, bone.a, bone.b)
        ends = np.exp(-(t / 0.22) ** 2) + np.exp(-((1 - t) / 0.22) ** 2)
        r = bone.radius * (1 + bone.flare * ends)
        cortex = r * rng.uniform(0.22, 0.3)
        outer, inner = _chord(r, dist), _chord(r - cortex, dist)
        density = 2.2 * (outer - inner) + 0.4 * inner * (1 + 0.4 * texture)
        for centre, radius in bone.erosions:
            hole = np.hypot(xx - centre[0], yy - centre[1]) < radius
            density = np.where(hole, 0.1 * density, density)
        bone_density += density * bone.density
    for centre, radius, loss in osteopenia:
        bone_density *= 1 - loss * np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * radius ** 2))
    attenuation = 1.3 * tissue + 6.0 * bone_density
    image = 1 - np.exp(-attenuation * rng.uniform(0.8, 1.2))
    image = ndimage.gaussian_filter(image, rng.uniform(0.4, 0.9) * size / 256)
    gamma = rng.uniform(0.8, 1.25)
    image = 0.04 + 0.9 * image ** gamma
    image += rng.normal(0, rng.uniform(0.01, 0.03), image.shape) * np.sqrt(image + 0.05)
    return np.clip(image, 0, 1).astype(np.float32), mask


def phantom(seed, index, label, size=256):
    """The phantom number ``index`` of a set drawn with ``seed``; ``label`` 0 Normal, 1 RA."""
    return render_hand(np.random.default_rng([seed, index]), size=size, ra=bool(label))


def _save_png(path, array):
    with atomic_write(path) as f:
        Image.fromarray(array).save(f, format="PNG")


def write_phantoms(out, n, seed=0, size=256, progress=None):
    """Write ``n`` phantoms, alternating classes, with their lesion masks.

    Layout::

        out/images/<class>/<class>_00000.png    the data set (pass out/images to train)
        out/masks/<class>/<class>_00000.png     lesion masks, 255 = lesion
        out/phantoms.json                       the generator settings

    Returns the list of image paths.
    """
    out = Path(out)
    paths = []
    for i in range(n):
        label = i % 2
        image, mask = phantom(seed, i, label, size)
        name = f"{CLASS_NAMES[label].lower()}_{i:05d}.png"
        path = out / "images" / CLASS_NAMES[label] / name
        _save_png(path, (image * 255 + 0.5).astype(np.uint8))
        _save_png(out / "masks" / CLASS_NAMES[label] / name, mask.astype(np.uint8) * 255)
        paths.append(path)
        if progress:
            progress(i + 1, n)
    with atomic_write(out / "phantoms.json", "w") as f:
        json.dump({"generator": "minivgg.phantoms", "n": n, "seed": seed, "size": size,
                   "classes": list(CLASS_NAMES)}, f, indent=2)
    return paths
