"""userErrors: business failures a mutation reports next to its (unchanged) object."""

from __future__ import annotations

import strawberry

from domain import errors

UserErrorCode = strawberry.enum(
    errors.UserErrorCode, description="Why a mutation refused its input."
)


@strawberry.type(description="A business rule the input broke; nothing was changed.")
class UserError:
    field: list[str] | None = strawberry.field(description="Path to the offending input field.")
    code: UserErrorCode  # type: ignore[valid-type]
    message: str

    @classmethod
    def of(cls, error: errors.UserError) -> UserError:
        return cls(field=list(error.field) or None, code=error.code, message=error.message)

    @classmethod
    def all(cls, rejected: errors.Rejected | None) -> list[UserError]:
        return [] if rejected is None else [cls.of(e) for e in rejected.errors]
