"""The study's settings, the findings and the trial store; what the executors share, without
TensorFlow, so a profile is checked in milliseconds."""

EXECUTORS = ("local", "ray")  # trials in this process, or as Ray tasks (trialstore.run_trials)


class TrialFailed(RuntimeError):
    """A trial function raised: the message names the trial and its config."""
