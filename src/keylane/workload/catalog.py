"""A seeded product catalog for the synthetic shoppers: SKUs, names, categories, prices.

Popularity is Zipf-like (a few doorbusters get most views), prices are lognormal around $35 and
end in .99, as on a real Black Friday listing page.

Pure: imports the standard library only.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass

__all__ = ["Catalog", "Product"]

_ADJECTIVES = (
    "Cozy", "Classic", "Ultra", "Smart", "Everyday", "Deluxe", "Compact", "Vintage", "Pro",
    "Essential", "Festive", "Wireless", "Organic", "Heated", "Slim",
)  # fmt: skip
_ITEMS: tuple[tuple[str, str], ...] = (
    ("Wool Scarf", "apparel"), ("Puffer Jacket", "apparel"), ("Running Shoes", "shoes"),
    ("Leather Boots", "shoes"), ("Headphones", "electronics"), ("Smartwatch", "electronics"),
    ("Air Fryer", "kitchen"), ("Espresso Machine", "kitchen"), ("Throw Blanket", "home"),
    ("Desk Lamp", "home"), ("Board Game", "toys"), ("Building Set", "toys"),
    ("Face Serum", "beauty"), ("Perfume", "beauty"), ("Backpack", "accessories"),
    ("Sunglasses", "accessories"), ("Yoga Mat", "sports"), ("Water Bottle", "sports"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Product:
    """One product: ``sku``, display ``name``, ``category`` and ``price`` in dollars."""

    sku: str
    name: str
    category: str
    price: float


class Catalog:
    """``size`` products and a Zipf(``skew``) popularity draw over them.

    Args:
        rng: the workload's random source (the catalog is a function of its state).
        size: how many products.
        skew: the Zipf exponent of popularity (1.0: the top product is twice the second).
    """

    def __init__(self, rng: random.Random, size: int = 2_000, skew: float = 1.0) -> None:
        products = []
        for index in range(size):
            item, category = rng.choice(_ITEMS)
            price = max(4.99, round(rng.lognormvariate(3.55, 0.7)) - 0.01)
            products.append(
                Product(
                    sku=f"SKU-{index + 1:05d}",
                    name=f"{rng.choice(_ADJECTIVES)} {item}",
                    category=category,
                    price=round(price, 2),
                )
            )
        self.products: tuple[Product, ...] = tuple(products)
        total = 0.0
        cumulative = []
        for rank in range(size):
            total += 1.0 / (rank + 1) ** skew
            cumulative.append(total)
        self._cumulative = cumulative
        self._total = total

    def pick(self, rng: random.Random) -> Product:
        """A product drawn by popularity."""
        index = bisect.bisect_left(self._cumulative, rng.random() * self._total)
        return self.products[min(index, len(self.products) - 1)]
