"""Models and training: nets (the ResNet, the simple CNN, Elastic Net), pretrained
(keras.applications bases and the study's head), training (seeded fit), evaluation.

The allowed values of the parameters this layer owns live here, without TensorFlow, so the
configuration layer can check a profile in milliseconds."""

# how learning rates scale with the batch's ratio to the study's 32 (training.scaled_learning_rate)
LR_SCALING = ("none", "linear", "sqrt")
