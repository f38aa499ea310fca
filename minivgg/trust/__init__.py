"""How far a model can be trusted: its card, the out-of-distribution detector, calibration, Table 2's metrics."""
