"""Models and training. Imports nothing heavy: the configuration layer reads LR_SCALING."""

LR_SCALING = ("none", "linear", "sqrt")  # training.scaled_learning_rate's rules
