"""The catalog in SQL: products, variants, stock, images, categories, reviews; staff edits."""
