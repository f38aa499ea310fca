"""Chapter 3, VGG8: worked answers to the exercises in ``docs/exercises/ch03.py``.

Try the exercises first; then ``python docs/solutions/ch03.py`` runs each answer through its checker.
"""

from minivgg.course.exercises import check_output_shapes, check_parameter_count, check_receptive_field, run_exercises


def block_shapes(image_size, channels):
    """(C, H, W) after each of the five blocks: a block ends with a pool, and has its last conv's width."""
    last_conv_of_block = (channels[0], channels[1], channels[3], channels[5], channels[7])
    return [(c, image_size // 2 ** (i + 1), image_size // 2 ** (i + 1)) for i, c in enumerate(last_conv_of_block)]


def parameter_count(channels, hidden, image_size, num_classes):
    """Weights and biases of every conv (K*C*9 + K) and dense layer (O*D + O)."""
    total, c_in = 0, 3
    for c_out in channels:
        total += c_out * c_in * 9 + c_out
        c_in = c_out
    flat = c_in * (image_size // 32) ** 2              # five pools: the last maps are S/32 wide
    return total + (hidden * flat + hidden) + (hidden * hidden + hidden) + (num_classes * hidden + num_classes)


def receptive_field(layers):
    """The side of the input square one output cell sees.

    ``step`` is how many input pixels apart two neighbouring cells of the current layer
    are: a 3x3 conv reaches one step further on each side (+2 steps), a 2x2 pool one step
    (+1), and doubles the step for every layer after it.
    """
    field, step = 1, 1
    for kind in layers:
        if kind == "conv":
            field += 2 * step
        else:
            field += step
            step *= 2
    return field


EXERCISES = [(block_shapes, check_output_shapes), (parameter_count, check_parameter_count),
             (receptive_field, check_receptive_field)]

if __name__ == "__main__":
    run_exercises(EXERCISES)
