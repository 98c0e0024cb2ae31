"""The demo shop: a small SYNTHETIC catalog and user base, generated deterministically.

It exists so the quickstart and the tests run offline in seconds. It is not real data and its
numbers say nothing about real recommenders. What makes it a fair toy:

- 10 departments x 5 product types x ~50 items, titled like a web shop ("<brand> <adjective>
  <product>, <size>"), with a brand and a category path per item; a few titles carry HTML
  entities, as real catalogs do.
- Users have one to three departments of interest, a favourite brand per department, and
  sequential habits: within a department, product types follow a routine (shampoo, then
  conditioner, then a hair mask...), so the next item is predictable from the last ones.
- Item choice within a product type is popularity-skewed (Zipf) and brand-loyal.
"""

from __future__ import annotations

import numpy as np

from genrec.data.catalog import Catalog, Item
from genrec.data.dataset import Dataset
from genrec.data.sequences import Sequences

DEPARTMENTS: dict[str, list[str]] = {
    "Hair Care": ["Shampoo", "Conditioner", "Hair Mask", "Hair Oil", "Styling Gel"],
    "Skin Care": ["Facial Cleanser", "Toner", "Face Serum", "Moisturizer", "Sunscreen"],
    "Makeup": ["Foundation", "Concealer", "Mascara", "Eyeliner", "Lipstick"],
    "Nails": ["Base Coat", "Nail Polish", "Top Coat", "Cuticle Oil", "Nail File"],
    "Kitchen": ["Chef Knife", "Cutting Board", "Skillet", "Saucepan", "Spatula"],
    "Coffee & Tea": ["Coffee Grinder", "Coffee Beans", "French Press", "Milk Frother", "Travel Mug"],
    "Outdoors": ["Backpack", "Tent", "Sleeping Bag", "Headlamp", "Water Filter"],
    "Fitness": ["Yoga Mat", "Resistance Bands", "Dumbbells", "Foam Roller", "Jump Rope"],
    "Pets": ["Dog Food", "Dog Leash", "Chew Toy", "Cat Litter", "Scratching Post"],
    "Baby": ["Diapers", "Baby Wipes", "Baby Bottle", "Pacifier", "Baby Lotion"],
}
BRANDS: dict[str, list[str]] = {
    "Hair Care": ["Silkora", "Mane & Co", "Herbalia", "Curlwise", "Nordic Roots"],
    "Skin Care": ["Lumina", "DermaPure", "Glowfield", "Aqualis", "Petal Lab"],
    "Makeup": ["Velvetine", "Rouge Atelier", "Pixie Pro", "Noir Muse", "Bloomkiss"],
    "Nails": ["Lacquerly", "Polish Bar", "Glossa", "NailTek", "Ciel"],
    "Kitchen": ["IronHearth", "Chef's Choice Works", "Copperline", "Blade & Board", "Kiln"],
    "Coffee & Tea": ["BrewMaster", "Bean Theory", "Kettleworks", "Morning Ritual", "Roastery 9"],
    "Outdoors": ["TrailForge", "Summit Gear", "Pinecrest", "Northwind", "Basecamp"],
    "Fitness": ["FlexCore", "IronPulse", "ZenMotion", "Reboundr", "Athlon"],
    "Pets": ["Happy Paws", "Whisker Co", "Barkley", "FurBest", "TailWag"],
    "Baby": ["Little Sprout", "CuddleCo", "Bumble Baby", "TinyNest", "Softie"],
}
ADJECTIVES = ["Hydrating", "Organic", "Professional", "Travel Size", "Ultra Gentle", "Extra Strength",
              "Lavender", "Unscented", "Deluxe", "Everyday", "Vegan", "Lightweight", "Heavy Duty",
              "Classic", "Compact", "Premium", "Natural", "Coconut", "Vanilla", "Charcoal"]
SIZES = ["1 oz", "2 oz", "8 oz", "16 oz", "Pack of 2", "Pack of 3", "Large", "Small", "10 inch",
         "12 inch", "1 Count", "3.4 fl oz"]


def make_demo_shop(n_users: int = 2000, items_per_type: int = 50, seed: int = 7) -> Dataset:
    """Generate the synthetic demo shop (same ``seed``, same data, on every machine)."""
    rng = np.random.default_rng(seed)
    items: list[Item] = []
    by_type: dict[tuple[str, str], list[int]] = {}
    brand_of: list[str] = []
    n = 0
    for dept, types in DEPARTMENTS.items():
        for ptype in types:
            ids = []
            for j in range(items_per_type):
                brand = BRANDS[dept][int(rng.integers(len(BRANDS[dept])))]
                adj = ADJECTIVES[int(rng.integers(len(ADJECTIVES)))]
                size = SIZES[int(rng.integers(len(SIZES)))]
                title = f"{brand} {adj} {ptype}, {size}"
                if j % 17 == 3:
                    title = title.replace(" & ", " &amp; ") + " &ndash; Gift Set"
                iid = f"D{n:05d}"
                items.append(Item(id=iid, title=title, brand=brand, categories=(dept, ptype)))
                brand_of.append(brand)
                ids.append(n)
                n += 1
            by_type[(dept, ptype)] = ids
    # Zipf-like popularity within each product type, in a random order of items.
    pop = np.zeros(n)
    for ids in by_type.values():
        w = 1.0 / np.arange(1, len(ids) + 1) ** 1.1
        pop[rng.permutation(ids)] = w
    depts = list(DEPARTMENTS)
    seqs: dict[str, list[str]] = {}
    times: dict[str, list[float]] = {}
    t0 = 1_600_000_000.0
    cdfs: dict = {}  # (department, type, favourite brand) -> (items, cumulative weights)
    for u in range(n_users):
        k = 1 + int(np.searchsorted([0.3, 0.75], rng.random(), side="right"))
        interests = list(rng.choice(len(depts), size=k, replace=False))
        fav = {d: BRANDS[depts[d]][int(rng.integers(5))] for d in interests}
        length = int(min(30, 4 + rng.geometric(0.12)))
        dept = interests[0]
        step = int(rng.integers(5))
        seq, ts = [], []
        t = t0 + float(rng.uniform(0, 3e7))
        for _ in range(length):
            r = rng.random()
            if r < 0.2 and k > 1:  # switch to another interest
                dept = interests[int(rng.integers(k))]
                step = int(rng.integers(5))
            elif r < 0.8:  # follow the routine: next product type
                step = (step + 1) % 5
            ptype = DEPARTMENTS[depts[dept]][step]
            key = (depts[dept], ptype, fav[dept])
            if key not in cdfs:
                cand = by_type[key[:2]]
                w = pop[cand] * np.where(np.array([brand_of[c] for c in cand]) == key[2], 4.0, 1.0)
                cdfs[key] = (cand, np.cumsum(w) / w.sum())
            cand, cdf = cdfs[key]
            choice = cand[min(int(np.searchsorted(cdf, rng.random())), len(cand) - 1)]
            seq.append(items[choice].id)
            t += float(rng.exponential(86400 * 5))
            ts.append(t)
        seqs[f"U{u:05d}"] = seq
        times[f"U{u:05d}"] = ts
    catalog = Catalog(items, source="demo (synthetic)")
    return Dataset("demo", catalog, Sequences(seqs, times, ["generated: demo shop (synthetic)"]),
                   {"synthetic": True, "seed": seed, "n_users": n_users}, synthetic=True)
