"""Parsing and validating documents once per text, within a memory bound.

One byte-bounded LRU (cachetools) holds each document text's AST and its validation
errors, so the parser, the validation rules and the suggestion policy run once per
distinct document, and no stream of distinct documents can grow a worker's memory past
`max_bytes`. An entry weighs its text times what a parsed, validated document was
measured to take (`BYTES_PER_CHARACTER`), so a big document costs its share.

Validation errors carry the `extensions.code` of the rules that raised them (each rule
group validates on its own and tags its errors), never a guess from message text. With
`hide_suggestions` (production: introspection off) no "Did you mean ...?" reaches a
client: graphql-core 3.3's own switch, applied to validation here and to variable
coercion by the schema's executor.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from cachetools import LRUCache
from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    Lexer,
    Source,
    TokenKind,
    parse,
    validate,
)
from strawberry.extensions import SchemaExtension

PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
TOKENS_EXCEEDED = "MAX_TOKENS_EXCEEDED"
# Measured with tracemalloc (graphql-core 3.3.2, locations kept): a parsed document takes
# about 70 bytes per character of dense GraphQL, validation's errors a little more; the
# text itself is kept by the AST. Comments and whitespace take far less: over-counted.
BYTES_PER_CHARACTER = 100


@dataclass(frozen=True, slots=True)
class RuleGroup:
    """Validation rules whose errors share one `extensions.code`."""

    code: str
    rules: tuple[type[ASTValidationRule], ...]


@dataclass(slots=True)
class _Entry:
    document: DocumentNode
    errors: list[GraphQLError] | None = None  # None until validated
    # What other extensions work out once per document (the input gate's verdict on its
    # literals), kept and evicted with it: one cache of documents, not one per extension.
    facts: dict[str, object] = field(default_factory=dict)


class DocumentCache:
    """Documents by text: the AST and, once validated, the errors. Bounded by bytes."""

    def __init__(self, max_bytes: int) -> None:
        self._entries: LRUCache[str, _Entry] = LRUCache(maxsize=max_bytes, getsizeof=_weight)

    @property
    def max_bytes(self) -> int:
        return int(self._entries.maxsize)

    @property
    def bytes_used(self) -> int:
        return int(self._entries.currsize)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, query: str) -> _Entry | None:
        return self._entries.get(query)

    def facts_of(self, query: str, document: DocumentNode) -> dict[str, object] | None:
        """The facts kept for `document`, when it is the cached parse of `query`."""
        entry = self._entries.get(query)
        return entry.facts if entry is not None and entry.document is document else None

    def put(self, query: str, document: DocumentNode) -> _Entry:
        entry = _Entry(document)
        if len(query) * BYTES_PER_CHARACTER <= self._entries.maxsize:
            self._entries[query] = entry  # a document too big to keep is just not kept
        return entry


def _weight(entry: _Entry) -> int:
    source = entry.document.loc.source.body if entry.document.loc else ""
    return max(1, len(source)) * BYTES_PER_CHARACTER


def too_many_tokens(query: str, max_tokens: int) -> bool:
    """Whether `query` has more than `max_tokens` tokens, comments included (the way
    graphql-core counts them for `max_tokens`); read only after a parse failed, to tell
    the limit from a syntax error without reading the error's text."""
    lexer = Lexer(Source(query))
    counted = 0
    try:
        previous = lexer.token
        while True:
            token = lexer.advance()
            skipped = previous.next
            while skipped is not None and skipped is not token:  # the comments in between
                counted += 1
                skipped = skipped.next
            if token.kind is TokenKind.EOF:
                return counted > max_tokens
            counted += 1
            if counted > max_tokens:
                return True
            previous = token
    except GraphQLSyntaxError:
        return counted > max_tokens


class CheckedDocuments(SchemaExtension):
    """The parse and validate steps through a `DocumentCache` (one per schema)."""

    def __init__(
        self,
        *,
        cache: DocumentCache,
        rule_groups: Sequence[RuleGroup],
        max_tokens: int,
        hide_suggestions: bool,
    ) -> None:
        super().__init__()
        self._cache = cache
        self._groups = rule_groups
        self._max_tokens = max_tokens
        self._hide_suggestions = hide_suggestions
        self._entry: _Entry | None = None

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query
        failure: str | None = None
        if query:
            self._entry = self._cache.get(query)
            if self._entry is None:
                try:
                    document = parse(query, max_tokens=self._max_tokens)
                except GraphQLSyntaxError:
                    failure = (
                        TOKENS_EXCEEDED
                        if too_many_tokens(query, self._max_tokens)
                        else PARSE_FAILED
                    )
                    # Leave the document unset: strawberry's own parse, under the same
                    # limit, reports the same error inside the operation, where the error
                    # policy and the other extensions see it.
                    context.parse_options = {"max_tokens": self._max_tokens}
                else:
                    self._entry = self._cache.put(query, document)
            if self._entry is not None:
                context.graphql_document = self._entry.document
        yield
        if failure is not None:
            for error in context.pre_execution_errors or ():
                error.extensions = {**(error.extensions or {}), "code": failure}

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        entry = self._entry
        if entry is None or entry.document is not context.graphql_document:
            entry = None
        if entry is not None and entry.errors is not None:
            context.pre_execution_errors = entry.errors
        elif context.graphql_document is not None:
            errors = self._validate(context.schema._schema, context.graphql_document)
            if entry is not None:
                entry.errors = errors
            context.pre_execution_errors = errors
        yield

    def _validate(self, schema: GraphQLSchema, document: DocumentNode) -> list[GraphQLError]:
        errors: list[GraphQLError] = []
        for group in self._groups:
            found = validate(schema, document, group.rules, hide_suggestions=self._hide_suggestions)
            for error in found:
                error.extensions = {**(error.extensions or {}), "code": group.code}
            errors.extend(found)
        return errors
