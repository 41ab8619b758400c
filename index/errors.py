"""Domain errors raised by the core. Only ``service/`` maps them to HTTP status codes."""


class CiteQAError(Exception):
    """Base class: every message says what went wrong and, where possible, what to run."""


class EmptyQuestionError(CiteQAError):
    """The question is empty or only whitespace."""


class WordlessQuestionError(CiteQAError):
    """The question has no letter, digit or CJK character, only punctuation or symbols ("???", "？？？")."""


class QuestionTooLongError(CiteQAError):
    """The question is longer than the configured limit."""


class DocumentError(CiteQAError):
    """An article file could not be parsed."""


class UnreadableDocumentError(DocumentError):
    """A file that no reader can turn into text: its ``code`` says why in one word (``unsupported_type``,
    ``empty``, ``undecodable``, ``corrupt``, ``encrypted``, ``no_text``, ...), the message in words.

    Ingest skips such a file and reports it; it never stops a build or the server.
    """

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


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


class InvalidDocumentNameError(CiteQAError):
    """A file name or document id that would escape the documents folder, or is otherwise unusable."""


class UnsupportedFileTypeError(CiteQAError):
    """A file of a type no reader handles."""


class DocumentExistsError(CiteQAError):
    """A document with this id is already in the collection."""


class PathConflictError(CiteQAError):
    """A file's place in the folder is taken by something else: a file where its folder would be, or a
    folder where the file would go."""


class DocumentNotFoundError(CiteQAError):
    """No document with this id."""


class FileTooLargeError(CiteQAError):
    """A file over the configured size limit."""


class StoreUnavailableError(CiteQAError):
    """The index store (Milvus) did not answer within its timeout, or refused the connection."""

    def __init__(self, uri: str, detail: str) -> None:
        super().__init__(
            f"the index store at {uri} is unavailable ({detail}); check that Milvus is running there "
            "(CITEQA_MILVUS_URI) and retry"
        )
        self.uri = uri


class GenerationUnavailableError(CiteQAError):
    """A generated answer was asked for, but no LLM is configured (``CITEQA_LLM_URL``)."""


class GenerationError(CiteQAError):
    """The LLM could not give a usable completion (unreachable, too slow, an error status, malformed or
    empty output). Never reaches a client as an error: the answer falls back to the extractive one."""
