"""Domain errors raised by the core. Only ``service/`` maps them to HTTP status codes."""


class CiteQAError(Exception):
    """Base class: every message says what went wrong and, where possible, what to run."""


class EmptyQuestionError(CiteQAError):
    """The question is empty or only whitespace."""


class QuestionTooLongError(CiteQAError):
    """The question is longer than the configured limit."""


class DocumentError(CiteQAError):
    """An article file could not be parsed."""


class EmptyCorpusError(CiteQAError):
    """The documents folder is missing, or holds no passages."""


class IndexMissingError(CiteQAError):
    """No index has been built at the configured location."""


class IndexMismatchError(CiteQAError):
    """The saved index was built with another model, format or chunking."""


class IndexCorruptError(CiteQAError):
    """A file of the saved index is missing, truncated or unreadable."""


class ModelError(CiteQAError):
    """The embedding model could not be prepared or loaded."""
