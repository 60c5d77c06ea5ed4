"""One exception type for every 'your input is wrong' case: the CLI prints it as one line."""


class StudyError(ValueError):
    """Bad input (path, layout, image, parameter): the message names what and where."""
