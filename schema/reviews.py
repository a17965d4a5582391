"""Review inputs and payloads."""

from __future__ import annotations

import strawberry

from schema.catalog import Review
from schema.errors import UserError


@strawberry.input
class ReviewCreateInput:
    product_id: strawberry.ID
    rating: int = strawberry.field(description="1 to 5.")
    title: str = strawberry.field(description="At most 200 characters.")
    body: str = strawberry.field(default="", description="At most 5,000 characters.")


@strawberry.type
class ReviewCreatePayload:
    review: Review | None
    user_errors: list[UserError]
