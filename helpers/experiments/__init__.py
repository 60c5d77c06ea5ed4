"""One module per notebook's experiment, the findings and the trial store; the executor's allowed
values here, without TensorFlow, so a profile is checked in milliseconds."""

EXECUTORS = ("local", "ray")  # trials in this process, or as Ray tasks (trialstore.run_trials)
