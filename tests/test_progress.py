"""Progress lines: drawn with an ETA on a terminal, silent in a pipe or with --quiet, problems always shown."""

import io

from minivgg.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_on_a_terminal_shows_an_eta_and_finishes_the_line():
    out = Terminal()
    p = Progress(out)
    for done in (1, 2, 3, 4):
        p.update("predict", done, 4, "x")
    text = out.getvalue()
    assert text.count("\r") == 4 and "1/4" in text and "ETA" in text and text.endswith("\n")
    assert "4/4 x done" in text


def test_progress_in_a_pipe_or_quiet_draws_nothing_but_problems():
    for stream, quiet in ((io.StringIO(), False), (Terminal(), True)):
        p = Progress(stream, quiet=quiet)
        p.update("predict", 1, 4)
        p.line("epoch 1/3: loss 0.5")
        p.problem("minivgg: error: broken.png: not a readable image")
        lines = stream.getvalue().splitlines()
        assert lines[-1] == "minivgg: error: broken.png: not a readable image"
        assert ("epoch 1/3: loss 0.5" in lines) == (not quiet) and "\r" not in stream.getvalue()


def test_epoch_summary_line():
    from minivgg.training.train import epoch_summary
    line = epoch_summary({"epoch": 3, "train_loss": 0.41234, "train_accuracy": 0.8125, "seconds": 4.12,
                          "val_loss": 0.39, "val_accuracy": 0.85, "val_auc": 0.921}, 30)
    assert line == "epoch 3/30: loss 0.4123 accuracy 0.812 | validation loss 0.3900 accuracy 0.850 AUC 0.921 (4.1 s)"
