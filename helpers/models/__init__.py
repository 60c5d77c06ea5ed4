"""Models and training: nets, pretrained bases, training (the seeded fit and its logs: tblog,
mlflowlog), reuse (trace once per architecture), evaluation. Imports nothing heavy: the
configuration layer checks a profile against LR_SCALING in milliseconds."""

LR_SCALING = ("none", "linear", "sqrt")  # training.scaled_learning_rate's rules
