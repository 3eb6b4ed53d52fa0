"""What a probe asks and what a correct answer looks like: prompts and their checks."""

from __future__ import annotations

import secrets

from pydantic import ConfigDict, Field, model_validator

from llmmon.config.types import Name, Regex, StrictModel


class JSONExpect(StrictModel):
    required_keys: list[str] = Field(default_factory=list)


class Expect(StrictModel):
    """What a correct answer looks like; every condition given must hold."""

    contains: str | None = Field(default=None, min_length=1)
    regex: Regex | None = None
    equals: str | None = None
    json_: JSONExpect | bool | None = Field(default=None, alias="json")
    number: float | None = None
    tolerance: float = Field(default=0.0, ge=0)
    ignore_case: bool = False

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _something(self) -> Expect:
        if (self.contains, self.regex, self.equals, self.json_, self.number) == (None,) * 5:
            raise ValueError("give at least one of contains, regex, equals, json, number")
        return self


class Prompt(StrictModel):
    name: Name
    text: str = Field(min_length=1, max_length=100_000)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    expect: Expect | None = None

    def with_nonce(self) -> Prompt:
        """The prompt behind a fresh nonce: no prefix cache (vLLM's, llama.cpp's, a
        gateway's) holds a prompt that starts differently each time, so TTFT is what a new
        user waits. Eight hex digits in brackets: short, and models read past them."""
        return self.model_copy(update={"text": f"[{secrets.token_hex(4)}] {self.text}"})
