"""Reading what the configuration names, bounded: secret and config files (regular files
only, under a size cap, never blocking), YAML (nesting and alias expansion capped) and the
JSON of ``LLMMON_*`` variables (nesting capped).

A FIFO opened for reading blocks until a writer comes, ``/dev/zero`` never ends, a deep
document overflows the parsers' recursion and an alias bomb expands a few hundred bytes into
gigabytes; each is refused here with a message that names the file and the reason, never
its content. Nothing here knows of the settings; ``types.read_yaml`` turns these errors into
``ConfigError``.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.nodes import MappingNode, Node, SequenceNode
from yaml.scanner import ScannerError

SECRET_FILE_LIMIT = 64 << 10  # an API key, a header value
CONFIG_FILE_LIMIT = 4 << 20  # the config file, the web config file (prompts may be long)
MAX_DEPTH = 64  # nesting levels of YAML and of a variable's JSON; a config needs a handful
# What aliases (and merge keys, which use them) may add to a document, weighed as in _weight:
# shared defaults across many endpoints are a few KiB; a 400-byte alias bomb is gigabytes.
MAX_ALIAS_WEIGHT = 16 << 20


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit >> 10} KiB"


class FileProblem(OSError):
    """A file llmmon will not read: ``reason`` says why, without the file's content. An
    ``OSError``, as a file that cannot be opened is: a probe reports it as a secret that
    cannot be read, and sends nothing."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


_ERRNO_REASONS = {errno.ENOENT: "file not found", errno.ENOTDIR: "file not found",
                  errno.EACCES: "permission denied", errno.EPERM: "permission denied",
                  errno.EISDIR: "is a directory", errno.ELOOP: "too many symbolic links"}


def _os_problem(path: Path, exc: OSError) -> FileProblem:
    reason = _ERRNO_REASONS.get(exc.errno or 0) or f"cannot read ({exc.strerror or 'error'})"
    return FileProblem(path, reason)


def _check(path: Path, st: os.stat_result, limit: int) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise FileProblem(path, "is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise FileProblem(path, "is not a regular file")
    if st.st_size > limit:
        raise FileProblem(path, f"is larger than {_size(limit)}")


def check_regular(path: Path, limit: int) -> os.stat_result:
    """The file's status when it is a regular file of at most ``limit`` bytes (following
    symbolic links, as a Kubernetes Secret's are); else ``FileProblem``. Opens nothing."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise _os_problem(path, exc) from None
    except ValueError:  # a NUL in the path
        raise FileProblem(path, "is not a file path") from None
    _check(path, st, limit)
    return st


def read_regular(path: Path, limit: int) -> str:
    """The UTF-8 text of a regular file of at most ``limit`` bytes, else ``FileProblem``.

    Neither a FIFO (the open is non-blocking, and the file is refused before it is read)
    nor a device nor a file that grows while it is read can make this wait or read more
    than ``limit + 1`` bytes."""
    check_regular(path, limit)  # a device is never even opened
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise _os_problem(path, exc) from None
    try:
        _check(path, os.fstat(fd), limit)  # what was opened, should the path have changed
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(limit + 1 - size, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise _os_problem(path, exc) from None
    finally:
        os.close(fd)
    if size > limit:
        raise FileProblem(path, f"is larger than {_size(limit)}")
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise FileProblem(path, "is not UTF-8") from None


# --- YAML ------------------------------------------------------------------------------


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (plain data only) that refuses, while composing and before
    anything is built, a document nested deeper than ``MAX_DEPTH`` (the composer and the
    constructor recurse once per level) and aliases that would expand it by more than
    ``MAX_ALIAS_WEIGHT``, merge keys included. An alias to a value that contains it (a
    cycle) is refused too."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._level = 0
        self._aliased = 0
        # id(node) -> (its weight expanded, its depth expanded), once it is complete.
        self._measured: dict[int, tuple[int, int]] = {}

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        # The scanner holds every token of a flow collection until it knows whether the
        # collection is a key, so `[[[[…` costs time squared before the composer sees any.
        if self.flow_level >= MAX_DEPTH:
            raise ScannerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                               self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        if self.check_event(yaml.AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None:
                if id(target) not in self._measured:
                    raise ComposerError(None, None, "an alias refers to a value that "
                                        "contains it", event.start_mark)
                self._aliased += self._measured[id(target)][0]
                if self._aliased > MAX_ALIAS_WEIGHT:
                    raise ComposerError(None, None, "aliases expand to more than "
                                        f"{_size(MAX_ALIAS_WEIGHT)}", event.start_mark)
            return super().compose_node(parent, index)
        if self._level >= MAX_DEPTH and not self.check_event(yaml.ScalarEvent):
            raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                event.start_mark)
        self._level += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._level -= 1
        if node is None:
            return None
        self._measured[id(node)] = measured = self._measure(node)
        if measured[1] > MAX_DEPTH:  # through aliases
            raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                event.start_mark)
        return node

    def _measure(self, node: Node) -> tuple[int, int]:
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            return 8 + len(str(node.value)), 0
        measured = [self._measured[id(child)] for child in children]
        return (8 + sum(w for w, _ in measured),
                1 + max((d for _, d in measured), default=0))


def load_yaml(text: str) -> Any:
    """The data of one YAML document under the limits above. Raises ``yaml.YAMLError``."""
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


# --- JSON in variables ------------------------------------------------------------------

# An unterminated string runs to the end: without `|$` the scan would restart at every
# escaped quote of an unterminated string and take quadratic time (80 KB: 24 s).
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*(?:"|$)', re.DOTALL)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def json_depth(text: str) -> int:
    """How deeply the JSON in ``text`` nests (strings' contents aside), found without
    parsing it: pydantic-settings' ``json.loads`` would recurse once per level."""
    depth = deepest = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub("", text)):
        depth += 1 if match.group() in "[{" else -1
        deepest = max(deepest, depth)
    return deepest
