"""One module per notebook's experiment (resnet: 02, hyperparams: 03, augmentation: 04,
transfer: 05), each with its trial or seed loop, summaries, claims and conclusion; findings (the
study's claims C1-C11 and their statistics) and trials (the resumable trial store, local or Ray).

The allowed values of the parameter this layer owns live here, without TensorFlow, so the
configuration layer can check a profile in milliseconds."""

EXECUTORS = ("local", "ray")  # how trials run: in this process, or as Ray tasks (trialstore.run_trials)
