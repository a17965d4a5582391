"""Review writes: the review and its product's rating summary in one transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, cast, func, insert, literal, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from domain.catalog import Review
from domain.events import ReviewCreated
from domain.listing import REVIEWS_ORDERING
from domain.pagination import Page, PageRequest
from domain.reviews import NewReview
from persistence.catalog.records import review_from_row
from persistence.catalog.statements import review_select
from persistence.cursor_keys import cursor_id, cursor_time, time_id_cursor
from persistence.db import Database
from persistence.events.outbox import emit
from persistence.pii import PiiCipher
from persistence.tables import product_rating_summaries, reviews

summary = product_rating_summaries


class SqlReviewRepository:
    def __init__(self, db: Database, pii: PiiCipher) -> None:
        self._db = db
        self._pii = pii
        self._insert: Any = postgresql.insert if db.is_postgres else sqlite.insert

    async def add(self, review: NewReview) -> Review | None:
        count, total = summary.c.rating_count + 1, summary.c.rating_sum + review.rating
        upsert = (
            self._insert(summary)
            .values(
                product_id=review.product_id,
                rating_count=1,
                rating_sum=review.rating,
                rating_average=float(review.rating),
            )
            .on_conflict_do_update(
                index_elements=[summary.c.product_id],
                set_={
                    "rating_count": count,
                    "rating_sum": total,
                    # Two decimals, computed from integers in the same statement, so
                    # concurrent reviews of one product cannot lose an update.
                    "rating_average": func.round(cast(total * 100, Float) / count) / 100.0,
                },
            )
        )
        try:
            async with self._db.writer.begin() as connection:
                review_id = (
                    await connection.execute(
                        insert(reviews)
                        .values(
                            product_id=review.product_id,
                            customer_id=review.customer_id,
                            rating=review.rating,
                            title=review.title,
                            body=review.body,
                        )
                        .returning(reviews.c.id)
                    )
                ).scalar_one()
                await connection.execute(upsert)
                await emit(connection, ReviewCreated(product=review.product_id, review=review_id))
                row = (
                    (await connection.execute(review_select().where(reviews.c.id == review_id)))
                    .mappings()
                    .one()
                )
        except IntegrityError:  # one review per customer per product
            return None
        return review_from_row(row, self._pii)

    async def by_customer(self, customer_id: int, page: PageRequest) -> Page[Review]:
        statement = review_select().where(reviews.c.customer_id == customer_id)
        if page.after is not None:
            created_at, review_id = page.after
            statement = statement.where(
                tuple_(reviews.c.created_at, reviews.c.id)
                < tuple_(
                    literal(cursor_time(created_at), reviews.c.created_at.type),
                    literal(cursor_id(review_id)),
                )
            )
        statement = statement.order_by(reviews.c.created_at.desc(), reviews.c.id.desc()).limit(
            page.first + 1
        )
        # The primary: a shopper's own reviews, read right after writing one.
        async with self._db.primary_reader.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return Page.from_rows(
            rows,
            first=page.first,
            after=page.after,
            cursor_of=lambda row: time_id_cursor(REVIEWS_ORDERING, row["created_at"], row["id"]),
            node_of=lambda row: review_from_row(row, self._pii),
        )
