"""Models and training: nets, pretrained bases, training (the seeded fit; fitlog: its logs), reuse
(trace once per architecture), evaluation. Imports nothing heavy (the configuration layer reads
LR_SCALING in milliseconds)."""

LR_SCALING = ("none", "linear", "sqrt")  # training.scaled_learning_rate's rules
