"""Chapter 3, VGG8: exercises. Replace each TODO, then run ``python docs/exercises/ch03.py``.

Each checker calls your function on inputs of its own and says in words what differs.
Worked answers: ``docs/solutions/ch03.py`` (look after you have tried).
"""

from minivgg.course.exercises import check_output_shapes, check_parameter_count, check_receptive_field, run_exercises


def block_shapes(image_size, channels):
    """The output (C, H, W) of each of VGG8's five blocks, from the rules of the chapter, without running a model.

    image_size: S, a multiple of 32; channels: the widths of the eight convs, first to last
    -> a list of five (C, H, W) tuples.
    """
    # TODO: blocks 1 and 2 have one conv each, blocks 3 to 5 two; every block ends with a 2x2 max-pool.
    raise NotImplementedError


def parameter_count(channels, hidden, image_size, num_classes):
    """The number of parameters (weights and biases) of ``VGG8(num_classes, channels, hidden, image_size)``."""
    # TODO: every conv and every dense layer has weights and biases; the first dense layer's input is
    # the last block's output, flattened.
    raise NotImplementedError


def receptive_field(layers):
    """The side, in input pixels, of the square that one output cell sees after ``layers``.

    layers: a list of "conv" (3x3, stride 1) and "pool" (2x2, stride 2), first to last -> an int.
    """
    # TODO: follow two numbers through the layers: the field's side, and how many input pixels apart
    # two neighbouring cells of the current layer are.
    raise NotImplementedError


EXERCISES = [(block_shapes, check_output_shapes), (parameter_count, check_parameter_count),
             (receptive_field, check_receptive_field)]

if __name__ == "__main__":
    run_exercises(EXERCISES)
