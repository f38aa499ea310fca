"""Synthetic posteroanterior hand radiographs ("phantoms") with known rheumatoid lesions, and their healthy twins.

No open data set of adult RA and healthy hand radiographs may be shipped, and an
explanation can only be checked where the truth is known, so minivgg draws its own.

**Anatomy.** A hand, fingers up, wrist and forearm at the bottom, as a PA radiograph
shows it: radius and ulna, eight carpal bones in two rows, five metacarpals with round
heads, and phalanges that taper from a broad base to a narrower head (the distal ones
end in a small tuft); soft tissue (fingers, palm, thenar eminence, forearm) as rounded
bodies of low density. A long bone's half-width follows its length, flaring at both
ends; it is projected like a tube: a dense cortical shell (thick along the shaft, thin
at the ends) over a lighter trabecular core with a fine texture, which draws the bright
cortical margins of a real radiograph. The gap between neighbouring bone ends is the
radiographic joint space.

**Variation.** Left or right hand (mirrored), size, position and rotation, finger
spread and lengths, bone widths, joint spaces; exposure (dose, gamma), blur and noise.

**Disease, local by default.** An RA phantom has changes at a few of the joints RA
attacks (wrist, MCP 1-5, thumb IP, PIP 2-5; never the DIPs, which RA spares), each with
its own severity:

* joint-space narrowing: both bone ends grow into the gap (nothing else moves);
* marginal erosions: bites out of the bone margin next to the joint;
* periarticular osteopenia: bone near the joint loses density.

**Twins.** Every RA phantom has a healthy *twin*: the same hand, pose, exposure and
noise without the lesions. Each phantom draws from four independent random streams
(anatomy, pose and exposure | lesions | noise | shortcut marker), so the twin repeats
every draw but the lesions. The lesion mask is computed from the two quantised images,
``mask = (image != twin)``: it marks exactly where the lesions changed a pixel, and is
right by construction.

**Options for teaching.**

* ``global_osteopenia``: RA hands also lose bone density everywhere, as real RA hands
  often do. This is a *confounder*: a model can tell the classes apart without looking
  at the lesions. The twin keeps the global loss (it is part of the patient, not of a
  lesion), so the masks stay local and the twin-swap check
  (:func:`minivgg.explain.checks.twin_swap`) exposes a model that learnt it.
* ``shortcut_share``: a radiographer's side marker (a lead "L" or "R" in a corner) on
  that share of the images of ``shortcut_class``: a spurious cue for the Clever-Hans
  lesson. The twin carries the same marker; its own mask says where it is.
* ``difficulty``: how many joints are affected, how large and how strong the changes
  are (:data:`DIFFICULTIES`).

Everything is deterministic given the seed; :func:`write_phantoms` records every draw
of every image in ``phantoms.json``.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from minivgg.atomic import atomic_write

CLASS_NAMES = ("Normal", "RA")
GENERATOR_VERSION = 2
STREAMS = {"anatomy": 0, "lesions": 1, "noise": 2, "shortcut": 3}
RA_JOINTS = ("wrist", "mcp1", "ip1", "mcp2", "mcp3", "mcp4", "mcp5", "pip2", "pip3", "pip4", "pip5")


@dataclass(frozen=True)
class Difficulty:
    """How visible the disease is.

    Attributes
    ----------
    joints : (low, high), the number of affected joints is drawn from low..high
    size : scales the erosions' radii and the osteopenia's reach
    contrast : scales the density lost in erosions and osteopenia, and the narrowing
    """
    joints: tuple
    size: float
    contrast: float


# The bundled model was trained on "easy" phantoms (scripts/make_bundled_model.py): on "medium"
# ones its network stayed at chance in 12 epochs, and on "hard" ones the same network and recipe
# was still at chance after 960 Adam steps on 1280 phantoms: fewer, smaller, fainter lesions.
DIFFICULTIES = {"easy": Difficulty((4, 6), 1.4, 1.3),
                "medium": Difficulty((3, 5), 1.2, 1.15),
                "hard": Difficulty((2, 4), 1.0, 1.0)}


@dataclass(frozen=True)
class PhantomSettings:
    """What a set of phantoms is drawn with (recorded in ``phantoms.json``).

    Attributes
    ----------
    size : image side in pixels
    difficulty : a key of :data:`DIFFICULTIES`
    global_osteopenia : RA hands also lose density everywhere (a confounder)
    shortcut_share : share of ``shortcut_class`` images that carry a side marker (0: none)
    shortcut_class : the class the marker is planted on
    """
    size: int = 256
    difficulty: str = "medium"
    global_osteopenia: bool = False
    shortcut_share: float = 0.0
    shortcut_class: str = "RA"

    def __post_init__(self):
        if self.difficulty not in DIFFICULTIES:
            raise ValueError(f"difficulty must be one of {', '.join(DIFFICULTIES)}, got {self.difficulty!r}")
        if not 0 <= self.shortcut_share <= 1:
            raise ValueError(f"shortcut_share must be in [0, 1], got {self.shortcut_share}")
        if self.shortcut_class not in CLASS_NAMES:
            raise ValueError(f"shortcut_class must be one of {', '.join(CLASS_NAMES)}, got {self.shortcut_class!r}")
        if int(self.size) != self.size or self.size < 32:
            raise ValueError(f"size must be an integer of at least 32, got {self.size}")


@dataclass
class Phantom:
    """One phantom.

    Attributes
    ----------
    image : (S, S) float32 in [0, 1], exactly the saved 8-bit PNG divided by 255
    label : 0 Normal, 1 RA
    mask : (S, S) bool, where ``image`` and ``twin`` differ (all False for a Normal phantom)
    twin : (S, S) float32, the same hand without lesions (RA only, else None)
    shortcut_mask : (S, S) bool, where the side marker changed the image (None without one)
    params : dict, every draw that made this image (JSON-able)
    """
    image: np.ndarray
    label: int
    mask: np.ndarray
    twin: np.ndarray = None
    shortcut_mask: np.ndarray = None
    params: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------- anatomy


@dataclass
class Bone:
    """A bone along the segment ``a`` (proximal end) -> ``b`` (distal end), image units.

    Half-widths: ``base`` at ``a``, ``shaft`` along the middle, ``head`` at ``b``; the ends
    flare over ``2 * base`` and ``2 * head`` of the length and are closed by elliptical caps
    ``cap_a * base`` and ``cap_b * head`` long (1 = a round end, e.g. a metacarpal head).
    """
    name: str
    a: np.ndarray
    b: np.ndarray
    base: float
    shaft: float
    head: float
    cap_a: float = 0.4
    cap_b: float = 0.4

    def tip(self, end):
        """The outermost point of the cap at end ``"a"`` or ``"b"``."""
        axis = (self.b - self.a) / np.linalg.norm(self.b - self.a)
        return self.a - axis * self.cap_a * self.base if end == "a" else self.b + axis * self.cap_b * self.head


def _rotation(theta):
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def _finger(name_k, base_point, direction, lengths, widths, gap):
    """Bones laid end to end from ``base_point`` along ``direction``, ``gap`` between cap tips.

    ``widths[i] = (base, shaft, head)`` half-widths of bone ``i``.
    """
    bones, p = [], np.asarray(base_point, float)
    for (name, length, (base, shaft, head)) in zip(name_k, lengths, widths):
        cap_a = 0.35
        a = p + direction * cap_a * base
        b = a + direction * length
        bone = Bone(name, a, b, base, shaft, head, cap_a=cap_a, cap_b=0.45)
        bones.append(bone)
        p = bone.tip("b") + direction * gap
    return bones


def draw_hand(rng):
    """The random draws that define one hand and its pose (a JSON-able dict)."""
    return {"side": ["right", "left"][rng.integers(2)],
            "scale": float(rng.uniform(0.82, 0.92)),
            "rotation_deg": float(rng.uniform(-12, 12)),
            "shift": rng.uniform(-0.025, 0.025, 2).tolist(),
            "spread": float(rng.uniform(0.6, 1.3)),
            "finger_length": rng.uniform(0.94, 1.06, 5).tolist(),
            "finger_angle_deg": rng.normal(0, 1.5, 5).tolist(),
            "bone_width": float(rng.uniform(1.05, 1.25)),
            "joint_space": float(rng.uniform(0.010, 0.014)),
            "carpal_jitter": rng.normal(0, 0.003, (8, 2)).tolist(),
            "cortex": float(rng.uniform(0.85, 1.15)),
            "soft_tissue": float(rng.uniform(0.9, 1.1))}


# Layout of a right hand seen PA (thumb on the image's left), before the pose is applied.
# Fingers 2-5: metacarpal base (x, y), metacarpal head (x, y), finger angle from vertical
# (degrees, positive = towards the little finger), length scale.
_FINGERS = {2: ((0.455, 0.665), (0.405, 0.432), -7, 0.93), 3: ((0.50, 0.665), (0.485, 0.415), -1, 1.0),
            4: ((0.542, 0.672), (0.562, 0.432), 5, 0.94), 5: ((0.58, 0.682), (0.632, 0.468), 12, 0.78)}
# Half-widths (base, shaft, head) of metacarpal, proximal, middle and distal phalanx.
_WIDTHS = [(0.020, 0.0135, 0.023), (0.021, 0.0125, 0.016), (0.016, 0.010, 0.013), (0.0125, 0.007, 0.0095)]
# Carpal bones: centre (x, y) and half-widths (along x, along y): distal row (trapezium,
# trapezoid, capitate, hamate), then proximal row (scaphoid, lunate, triquetrum, pisiform).
_CARPALS = [(0.428, 0.712, 0.026, 0.022), (0.466, 0.702, 0.018, 0.022), (0.506, 0.71, 0.022, 0.032),
            (0.553, 0.713, 0.026, 0.027), (0.447, 0.764, 0.032, 0.022), (0.503, 0.77, 0.026, 0.024),
            (0.553, 0.762, 0.023, 0.022), (0.583, 0.748, 0.014, 0.014)]


def build_hand(p):
    """Bones, soft tissue and joints of the hand described by the draws ``p`` (:func:`draw_hand`).

    Returns ``(bones, soft, joints)``: ``bones`` name -> :class:`Bone`; ``soft`` a list of
    soft-tissue capsules ``(a, b, radius)``; ``joints`` name -> (proximal bone, distal bone).
    """
    w = p["bone_width"]
    gap = p["joint_space"]
    bones, joints, soft = {}, {}, []

    def add(bone):
        bones[bone.name] = bone

    # Forearm: radius (thumb side) and ulna, entering from below the image.
    add(Bone("radius", np.array([0.45, 1.15]), np.array([0.463, 0.808]), 0.03 * w, 0.03 * w, 0.055 * w, cap_b=0.22))
    add(Bone("ulna", np.array([0.60, 1.15]), np.array([0.592, 0.815]), 0.02 * w, 0.02 * w, 0.024 * w, cap_b=0.7))
    soft.append((np.array([0.525, 1.3]), np.array([0.525, 0.80]), 0.13))
    for i, (x, y, rx, ry) in enumerate(_CARPALS):
        c = np.array([x, y]) + np.array(p["carpal_jitter"][i])
        r = min(rx, ry) * w
        half = max(abs(rx - ry), 1e-4) * w
        axis = np.array([1.0, 0.0]) if rx >= ry else np.array([0.0, 1.0])
        add(Bone(f"carpal{i}", c - axis * half, c + axis * half, r, r, r, cap_a=1.0, cap_b=1.0))
    joints["wrist"] = ("radius", "carpal4")
    spread, lengths, angles = p["spread"], p["finger_length"], p["finger_angle_deg"]
    # Thumb: metacarpal, proximal and distal phalanx, angled out from the trapezium.
    tdir = _rotation(np.deg2rad(-(22 + 12 * spread) + angles[0])) @ np.array([0.0, -1.0])
    f = lengths[0]
    thumb = _finger(["mc1", "pp1", "dp1"], np.array([0.412, 0.695]), tdir, [0.13 * f, 0.09 * f, 0.062 * f],
                    [(0.019 * w, 0.013 * w, 0.022 * w), (0.019 * w, 0.012 * w, 0.015 * w),
                     (0.014 * w, 0.008 * w, 0.0105 * w)], gap)
    for bone in thumb:
        add(bone)
    joints["mcp1"], joints["ip1"] = ("mc1", "pp1"), ("pp1", "dp1")
    soft.append((thumb[0].a, thumb[0].b, 0.05))                    # thenar eminence
    soft.append((thumb[1].a, thumb[2].tip("b") - tdir * 0.014, 0.03))
    # Fingers 2-5: metacarpal (round head), proximal, middle and distal phalanx.
    for k, (mc_base, mc_head, angle, length) in _FINGERS.items():
        f = length * lengths[k - 1]
        direction = _rotation(np.deg2rad(angle * spread + angles[k - 1])) @ np.array([0.0, -1.0])
        mc = Bone(f"mc{k}", np.array(mc_base), np.array(mc_head), *(s * w for s in _WIDTHS[0]), cap_a=0.3, cap_b=0.95)
        chain = _finger([f"pp{k}", f"mp{k}", f"dp{k}"], mc.tip("b") + direction * gap, direction,
                        [0.15 * f, 0.095 * f, 0.062 * f], [tuple(s * w for s in ws) for ws in _WIDTHS[1:]], gap)
        for bone in [mc, *chain]:
            add(bone)
        joints[f"mcp{k}"], joints[f"pip{k}"] = (f"mc{k}", f"pp{k}"), (f"pp{k}", f"mp{k}")
        soft.append((mc.a, mc.b, 0.045))                              # palm
        r = 0.03 * length ** 0.5
        soft.append((chain[0].a, chain[1].b, r))
        soft.append((chain[1].a, chain[2].tip("b") - direction * 0.014, r * 0.85))
    soft.append((bones["mc2"].a, bones["mc5"].a, 0.05))               # heel of the hand
    # Pose: mirror a left hand, then scale, rotate and shift about the hand's centre.
    centre = np.array([0.5, 0.56])
    mirror = np.array([-1.0, 1.0]) if p["side"] == "left" else np.array([1.0, 1.0])
    rot = _rotation(np.deg2rad(p["rotation_deg"]))

    def place(q):            # the hand's centre lands a little below the image's, fingertips inside the crop
        return centre + np.array([0.0, 0.035]) + np.array(p["shift"]) + p["scale"] * (rot @ ((q - centre) * mirror))

    for bone in bones.values():
        bone.a, bone.b = place(bone.a), place(bone.b)
        bone.base, bone.shaft, bone.head = (bone.base * p["scale"], bone.shaft * p["scale"], bone.head * p["scale"])
    soft = [(place(a), place(b), r * p["scale"] * p["soft_tissue"]) for a, b, r in soft]
    return bones, soft, joints


# ---------------------------------------------------------------------------- lesions


@dataclass
class Lesions:
    """The rheumatoid changes of one hand (empty for a healthy one).

    Attributes
    ----------
    narrowing : dict bone name -> {"a" or "b": length the end grows into the joint space}
    erosions : dict bone name -> list of (centre (x, y), radius, depth)
    osteopenia : list of (centre (x, y), radius, loss) density losses around joints
    records : per affected joint, what was drawn (for phantoms.json)
    """
    narrowing: dict = field(default_factory=dict)
    erosions: dict = field(default_factory=dict)
    osteopenia: list = field(default_factory=list)
    records: list = field(default_factory=list)


def draw_lesions(bones, joints, rng, difficulty):
    """Draw the rheumatoid changes of one RA hand (see the module docstring)."""
    lesions = Lesions()
    n = rng.integers(difficulty.joints[0], difficulty.joints[1] + 1)
    chosen = sorted(rng.choice(len(RA_JOINTS), size=min(n, len(RA_JOINTS)), replace=False))
    for j in chosen:
        name = RA_JOINTS[j]
        proximal, distal = (bones[k] for k in joints[name])
        severity = float(rng.uniform(0.6, 1.0))
        strength = severity * difficulty.contrast
        gap = float(np.linalg.norm(distal.tip("a") - proximal.tip("b")))
        grow = min(0.35, 0.3 * strength) * gap               # each end: the gap loses up to 70%
        lesions.narrowing.setdefault(proximal.name, {})["b"] = grow
        lesions.narrowing.setdefault(distal.name, {})["a"] = grow
        centre = (proximal.tip("b") + distal.tip("a")) / 2
        half_width = min(proximal.head, distal.base)
        erosions = []
        for bone, end in ((proximal, "b"), (distal, "a")):
            axis = (bone.b - bone.a) / np.linalg.norm(bone.b - bone.a)
            normal = np.array([-axis[1], axis[0]])
            inward = -axis if end == "b" else axis
            r_end = bone.head if end == "b" else bone.base
            for _ in range(rng.integers(1, 3)):
                side = float(rng.choice([-1.0, 1.0]))
                point = bone.tip(end) + inward * r_end * rng.uniform(0.5, 1.2) + side * normal * r_end * 0.95
                radius = r_end * rng.uniform(0.6, 0.9) * difficulty.size * (0.7 + 0.3 * severity)
                depth = min(0.95, 1.1 * strength)
                lesions.erosions.setdefault(bone.name, []).append((point, radius, depth))
                erosions.append({"bone": bone.name, "centre": point.tolist(), "radius": radius, "depth": depth})
        radius = 3.0 * half_width * difficulty.size
        loss = min(0.9, 0.8 * strength)
        lesions.osteopenia.append((centre, radius, loss))
        lesions.records.append({"joint": name, "severity": severity, "narrowing_per_end": grow,
                                "erosions": erosions,
                                "osteopenia": {"centre": centre.tolist(), "radius": radius, "loss": loss}})
    return lesions


# ---------------------------------------------------------------------------- rendering


def _bump(t):
    """A smooth bump of compact support: (1 - t^2)^2 for |t| < 1, else 0 (a lesion changes nothing beyond it)."""
    return np.clip(1 - t * t, 0, None) ** 2


def _chord(r, dist):
    """Path length through a cylinder of radius ``r`` at distance ``dist`` from its axis."""
    return 2.0 * np.sqrt(np.clip(r * r - dist * dist, 0.0, None))


def _window(points, margin, size):
    """Row and column slices of the pixels within ``margin`` of the points' bounding box, and their coordinates."""
    points = np.asarray(points)
    lo = np.clip(np.floor((points.min(axis=0) - margin) * size).astype(int), 0, size)
    hi = np.clip(np.ceil((points.max(axis=0) + margin) * size).astype(int) + 1, 0, size)
    rows, cols = slice(lo[1], hi[1]), slice(lo[0], hi[0])
    y = (np.arange(lo[1], hi[1]) + 0.5)[:, None] / size
    x = (np.arange(lo[0], hi[0]) + 0.5)[None, :] / size
    return (rows, cols), x, y


def _band_noise(shape, rng, sigma_fine, sigma_coarse):
    """Band-passed white noise with unit standard deviation (the trabecular texture)."""
    from scipy import ndimage  # here, not at the top: the CLI imports this module to build its parser
    w = rng.standard_normal(shape)
    n = ndimage.gaussian_filter(w, sigma_fine) - ndimage.gaussian_filter(w, sigma_coarse)
    return n / (n.std() + 1e-12)


def _bone_density(bone, grow, cortex_scale, x, y, texture):
    """Projected density of one bone over the pixel grid ``x`` (1, W), ``y`` (H, 1).

    ``grow`` {"a"/"b": length} lengthens the cap at that end into its joint space
    (narrowing); only the pixels of that cap change.
    """
    axis = (bone.b - bone.a) / np.linalg.norm(bone.b - bone.a)
    normal = np.array([-axis[1], axis[0]])
    u_a = (x - bone.a[0]) * axis[0] + (y - bone.a[1]) * axis[1]      # distance along the axis from end a
    u_b = (bone.b[0] - x) * axis[0] + (bone.b[1] - y) * axis[1]      # ... and from end b
    v = (x - bone.a[0]) * normal[0] + (y - bone.a[1]) * normal[1]
    near_a = np.clip(1 - u_a / (2 * bone.base), 0, 1) ** 2          # 1 at end a, 0 once 2 * base away
    near_b = np.clip(1 - u_b / (2 * bone.head), 0, 1) ** 2
    half = bone.shaft + (bone.base - bone.shaft) * near_a + (bone.head - bone.shaft) * near_b
    # The caps beyond a and b are half-ellipses; narrowing makes a cap longer, so only it changes.
    cap_a = bone.base * np.sqrt(np.clip(1 - (u_a / (bone.cap_a * bone.base + grow.get("a", 0.0))) ** 2, 0, None))
    cap_b = bone.head * np.sqrt(np.clip(1 - (u_b / (bone.cap_b * bone.head + grow.get("b", 0.0))) ** 2, 0, None))
    half = np.where(u_a < 0, cap_a, np.where(u_b < 0, cap_b, half))
    cortex = half * cortex_scale * (0.32 - 0.2 * np.maximum(near_a, near_b))       # thick shaft, thin ends
    outer, inner = _chord(half, v), _chord(half - cortex, v)
    return 2.0 * (outer - inner) + 0.55 * inner * (1 + 0.35 * texture)


def render_attenuation(bones, soft, hand, lesions, size, texture, global_loss=0.0):
    """Total attenuation (S, S): soft tissue plus bones, with ``lesions`` applied.

    ``global_loss`` is the share of bone density lost everywhere (global osteopenia).
    """
    tissue = np.zeros((size, size))
    for a, b, r in soft:
        (rows, cols), x, y = _window([a, b], r, size)
        d = b - a
        t = np.clip(((x - a[0]) * d[0] + (y - a[1]) * d[1]) / (d @ d), 0, 1)
        dist = np.hypot(x - a[0] - t * d[0], y - a[1] - t * d[1])
        tissue[rows, cols] = np.maximum(tissue[rows, cols], _chord(r, dist))
    density = np.zeros((size, size))
    for bone in bones.values():
        grow = lesions.narrowing.get(bone.name, {})
        reach = max(bone.base, bone.head) * 1.05 + sum(grow.values())
        (rows, cols), x, y = _window([bone.a, bone.b], reach, size)
        d = _bone_density(bone, grow, hand["cortex"], x, y, texture[rows, cols])
        for centre, radius, depth in lesions.erosions.get(bone.name, []):
            d = d * (1 - depth * _bump(np.hypot(x - centre[0], y - centre[1]) / radius))
        density[rows, cols] += d
    for centre, radius, loss in lesions.osteopenia:
        (rows, cols), x, y = _window([centre], radius, size)
        density[rows, cols] *= 1 - loss * _bump(np.hypot(x - centre[0], y - centre[1]) / radius)
    return 4.0 * tissue + 14.0 * density * (1 - global_loss)


def draw_exposure(rng, size):
    """Dose, gamma, blur and noise level of one radiograph (JSON-able)."""
    return {"dose": float(rng.uniform(0.85, 1.2)), "gamma": float(rng.uniform(0.8, 1.2)),
            "blur_px": float(rng.uniform(0.4, 0.9) * size / 256), "noise": float(rng.uniform(0.01, 0.028)),
            "background": float(rng.uniform(0.02, 0.08))}


def expose(attenuation, exposure, noise):
    """Attenuation -> 8-bit radiograph (uint8): Beer-Lambert, blur, gamma, quantum-like noise."""
    from scipy import ndimage
    image = 1 - np.exp(-attenuation * exposure["dose"])
    image = ndimage.gaussian_filter(image, exposure["blur_px"])
    image = exposure["background"] + (0.95 - exposure["background"]) * image ** exposure["gamma"]
    image = image + exposure["noise"] * noise * np.sqrt(image + 0.05)
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


# ---------------------------------------------------------------------------- side marker

_GLYPHS = {"L": ["10000", "10000", "10000", "10000", "10000", "10000", "11111"],
           "R": ["11110", "10001", "10001", "11110", "10100", "10010", "10001"]}


def draw_marker(rng, side):
    """Corner, size and letter of a radiographer's side marker (JSON-able)."""
    return {"letter": "L" if side == "left" else "R", "corner": ["top-left", "top-right", "bottom-left",
                                                                  "bottom-right"][rng.integers(4)],
            "height": float(rng.uniform(0.09, 0.11)), "inset": float(rng.uniform(0.1, 0.13)),
            "density": float(rng.uniform(1.6, 2.0))}


def marker_attenuation(marker, size):
    """Attenuation (S, S) of a lead letter on a square plate in one corner of the image."""
    glyph = np.array([[c == "1" for c in row] for row in _GLYPHS[marker["letter"]]], dtype=float)
    side = max(8, int(round(marker["height"] * size)))
    plate = np.full((side, side), 0.35)
    cell = max(1, int(side * 0.8) // 7)
    letter = np.kron(glyph, np.ones((cell, cell)))
    top, left = (side - letter.shape[0]) // 2, (side - letter.shape[1]) // 2
    plate[top:top + letter.shape[0], left:left + letter.shape[1]] += letter
    out = np.zeros((size, size))
    inset = int(round(marker["inset"] * size))
    r0 = inset if marker["corner"].startswith("top") else size - inset - side
    c0 = inset if marker["corner"].endswith("left") else size - inset - side
    out[r0:r0 + side, c0:c0 + side] = plate * marker["density"]
    return out


# ---------------------------------------------------------------------------- phantoms


def _streams(seed, index):
    return {name: np.random.default_rng([seed, index, k]) for name, k in STREAMS.items()}


def make_phantom(seed, index, label, settings=PhantomSettings()):
    """The phantom number ``index`` of a set drawn with ``seed``; ``label`` 0 Normal, 1 RA."""
    size = settings.size
    streams = _streams(seed, index)
    hand = draw_hand(streams["anatomy"])
    exposure = draw_exposure(streams["anatomy"], size)
    texture = _band_noise((size, size), streams["anatomy"], 0.6 * size / 256, 2.5 * size / 256)
    noise = streams["noise"].standard_normal((size, size))
    bones, soft, joints = build_hand(hand)
    difficulty = DIFFICULTIES[settings.difficulty]
    healthy = Lesions()
    lesions = draw_lesions(bones, joints, streams["lesions"], difficulty) if label else healthy
    global_loss = float(streams["lesions"].uniform(0.15, 0.3)) if label and settings.global_osteopenia else 0.0
    marker = None
    if CLASS_NAMES[label] == settings.shortcut_class and streams["shortcut"].random() < settings.shortcut_share:
        marker = draw_marker(streams["shortcut"], hand["side"])
    extra = marker_attenuation(marker, size) if marker else 0.0

    def attenuation(changes):
        return render_attenuation(bones, soft, hand, changes, size, texture, global_loss)

    sick = attenuation(lesions)
    image = expose(sick + extra, exposure, noise)
    twin = expose(attenuation(healthy) + extra, exposure, noise) if label else None
    mask = image != twin if label else np.zeros((size, size), dtype=bool)
    shortcut_mask = image != expose(sick, exposure, noise) if marker else None
    params = {"seed": seed, "index": index, "class": CLASS_NAMES[label], "hand": hand, "exposure": exposure,
              "lesions": lesions.records, "global_osteopenia": global_loss, "marker": marker,
              "streams": {name: [seed, index, k] for name, k in STREAMS.items()}}
    return Phantom(image=image.astype(np.float32) / 255, label=label, mask=mask,
                   twin=None if twin is None else twin.astype(np.float32) / 255,
                   shortcut_mask=shortcut_mask, params=params)


def phantom(seed, index, label, size=256):
    """``(image, mask)`` of :func:`make_phantom` with the default settings at side ``size``."""
    p = make_phantom(seed, index, label, PhantomSettings(size=size))
    return p.image, p.mask


def _save_png(path, array):
    with atomic_write(path) as f:
        Image.fromarray(array).save(f, format="PNG")


def _u8(image):
    return (np.asarray(image) * 255 + 0.5).astype(np.uint8)


def write_phantoms(out, n, seed=0, progress=None, **options):
    """Write ``n`` phantoms, alternating classes (Normal first), with masks and twins.

    ``options`` are :class:`PhantomSettings` fields, e.g. ``size=128, difficulty="hard"``.

    Layout::

        out/images/<class>/<class>_00000.png      the data set (pass out/images to train)
        out/masks/<class>/<class>_00000.png       lesion masks, 255 where image and twin differ
        out/twins/RA/ra_00001.png                 each RA image's healthy twin (same name)
        out/shortcut_masks/<class>/<name>.png     where the side marker is (only images with one)
        out/phantoms.json                         the settings and every draw of every image

    Returns the list of image paths.
    """
    out = Path(out)
    settings = PhantomSettings(**options)
    paths, records = [], []
    for i in range(n):
        label = i % 2
        p = make_phantom(seed, i, label, settings)
        cls = CLASS_NAMES[label]
        name = f"{cls.lower()}_{i:05d}.png"
        path = out / "images" / cls / name
        _save_png(path, _u8(p.image))
        _save_png(out / "masks" / cls / name, p.mask.astype(np.uint8) * 255)
        if p.twin is not None:
            _save_png(out / "twins" / cls / name, _u8(p.twin))
        if p.shortcut_mask is not None:
            _save_png(out / "shortcut_masks" / cls / name, p.shortcut_mask.astype(np.uint8) * 255)
        paths.append(path)
        records.append({"file": f"{cls}/{name}", **p.params})
        if progress:
            progress(i + 1, n)
    with atomic_write(out / "phantoms.json", "w") as f:
        json.dump({"generator": "minivgg.imaging.phantoms", "version": GENERATOR_VERSION, "n": n, "seed": seed,
                   "classes": list(CLASS_NAMES), "settings": asdict(settings),
                   "difficulty": asdict(DIFFICULTIES[settings.difficulty]), "images": records}, f, indent=1)
    return paths
