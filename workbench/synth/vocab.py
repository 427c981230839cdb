"""Words the synthetic catalogue is built from: the category tree, name parts and brand parts.

Product names combine a descriptor of the top category, the leaf category and a variant
("Organic Arabica Coffee Beans 500g"), so keyword-level interest finds real signal.
"""

from __future__ import annotations

#: Top category -> sub-category -> leaf categories. Paths are joined with " > ".
TAXONOMY: dict[str, dict[str, list[str]]] = {
    "Home": {
        "Kitchen": ["Mugs", "Plates", "Saucepans", "Kitchen Knives", "Cutting Boards"],
        "Bedding": ["Duvet Covers", "Pillows", "Blankets", "Bed Sheets"],
        "Decor": ["Candles", "Vases", "Picture Frames", "Cushions", "Wall Art"],
        "Bathroom": ["Towels", "Bath Mats", "Soap Dispensers", "Shower Curtains"],
        "Storage": ["Storage Boxes", "Baskets", "Shelves", "Hangers"],
    },
    "Food & Drink": {
        "Coffee & Tea": ["Coffee Beans", "Ground Coffee", "Green Tea", "Black Tea", "Herbal Tea"],
        "Pantry": ["Olive Oil", "Pasta", "Rice", "Spices", "Honey"],
        "Snacks": ["Chocolate", "Crisps", "Nuts", "Biscuits"],
        "Drinks": ["Sparkling Water", "Juice", "Craft Beer", "Red Wine", "White Wine"],
    },
    "Fashion": {
        "Women": ["Dresses", "Blouses", "Skirts", "Knitwear", "Jeans"],
        "Men": ["Shirts", "T-Shirts", "Chinos", "Jackets", "Hoodies"],
        "Shoes": ["Sneakers", "Boots", "Sandals", "Loafers"],
        "Accessories": ["Scarves", "Belts", "Wallets", "Sunglasses", "Hats"],
    },
    "Beauty": {
        "Skincare": ["Moisturisers", "Cleansers", "Serums", "Sunscreen", "Face Masks"],
        "Haircare": ["Shampoo", "Conditioner", "Hair Oil", "Hair Dryers"],
        "Makeup": ["Lipstick", "Mascara", "Foundation", "Eyeshadow"],
        "Fragrance": ["Eau de Parfum", "Eau de Toilette", "Body Mist"],
    },
    "Electronics": {
        "Audio": ["Headphones", "Earbuds", "Bluetooth Speakers", "Soundbars"],
        "Computing": ["Keyboards", "Mice", "Monitors", "USB Hubs", "Webcams"],
        "Phone Accessories": [
            "Phone Cases",
            "Chargers",
            "Cables",
            "Power Banks",
            "Screen Protectors",
        ],
        "Smart Home": ["Smart Plugs", "Smart Bulbs", "Security Cameras", "Thermostats"],
    },
    "Sports & Outdoors": {
        "Fitness": ["Yoga Mats", "Dumbbells", "Resistance Bands", "Kettlebells"],
        "Running": ["Running Shoes", "Running Shorts", "Running Jackets", "Water Bottles"],
        "Camping": ["Tents", "Sleeping Bags", "Camping Stoves", "Headlamps", "Backpacks"],
        "Cycling": ["Bike Helmets", "Bike Lights", "Cycling Gloves", "Bike Locks"],
    },
    "Toys & Games": {
        "Board Games": ["Strategy Games", "Family Games", "Card Games", "Jigsaw Puzzles"],
        "Building Toys": ["Building Blocks", "Construction Sets", "Marble Runs"],
        "Outdoor Toys": ["Water Guns", "Kites", "Scooters", "Footballs"],
        "Dolls & Figures": ["Dolls", "Action Figures", "Plush Toys", "Dollhouses"],
    },
    "Garden": {
        "Plants": ["Seeds", "Flower Bulbs", "House Plants", "Herb Plants"],
        "Garden Tools": ["Pruners", "Spades", "Garden Hoses", "Garden Gloves", "Watering Cans"],
        "Outdoor Living": ["Garden Chairs", "Parasols", "Outdoor Lights", "BBQ Grills"],
        "Plant Care": ["Compost", "Fertiliser", "Plant Pots", "Bird Feeders"],
    },
    "Pets": {
        "Dogs": ["Dog Food", "Dog Treats", "Dog Beds", "Dog Leads", "Dog Toys"],
        "Cats": ["Cat Food", "Cat Litter", "Scratching Posts", "Cat Toys"],
        "Small Pets": ["Hay", "Hamster Cages", "Rabbit Food"],
        "Aquatics": ["Aquariums", "Fish Food", "Aquarium Filters"],
    },
    "Books & Stationery": {
        "Books": ["Novels", "Cookbooks", "Children's Books", "Travel Guides", "Biographies"],
        "Paper": ["Notebooks", "Journals", "Planners", "Sketchbooks"],
        "Writing": ["Fountain Pens", "Ballpoint Pens", "Pencils", "Markers"],
        "Office": ["Desk Organisers", "Staplers", "Folders", "Labels"],
    },
    "Baby": {
        "Nursery": ["Cots", "Baby Monitors", "Changing Mats"],
        "Feeding": ["Baby Bottles", "Bibs", "High Chairs", "Baby Food"],
        "Baby Clothing": ["Bodysuits", "Sleepsuits", "Baby Hats"],
        "Baby Travel": ["Pushchairs", "Car Seats", "Baby Carriers"],
    },
    "DIY": {
        "Power Tools": ["Drills", "Sanders", "Jigsaws", "Circular Saws"],
        "Hand Tools": ["Screwdrivers", "Hammers", "Spanners", "Tape Measures"],
        "Hardware": ["Screws", "Wall Plugs", "Hinges", "Padlocks"],
        "Paint": ["Wall Paint", "Paint Brushes", "Paint Rollers", "Masking Tape"],
        "Lighting": ["LED Bulbs", "Ceiling Lights", "Table Lamps", "Floor Lamps"],
    },
}

#: Typical (median) product price per top category, EUR.
TOP_PRICE: dict[str, float] = {
    "Home": 30.0,
    "Food & Drink": 11.0,
    "Fashion": 43.0,
    "Beauty": 22.0,
    "Electronics": 54.0,
    "Sports & Outdoors": 38.0,
    "Toys & Games": 27.0,
    "Garden": 24.0,
    "Pets": 19.0,
    "Books & Stationery": 15.0,
    "Baby": 30.0,
    "DIY": 27.0,
}

#: Words that describe products of a top category (the keyword signal).
DESCRIPTORS: dict[str, list[str]] = {
    "Home": ["Ceramic", "Linen", "Cotton", "Oak", "Bamboo", "Stoneware", "Velvet", "Nordic",
             "Rustic", "Minimalist", "Scented", "Handmade"],
    "Food & Drink": ["Organic", "Arabica", "Italian", "Single Origin", "Dark Roast", "Wildflower",
                     "Extra Virgin", "Spicy", "Sea Salt", "Fair Trade", "Gluten Free", "Vegan"],
    "Fashion": ["Slim Fit", "Merino", "Organic Cotton", "Leather", "Denim", "Classic",
                "Oversized", "Striped", "Waterproof", "Linen", "Cashmere", "Vintage"],
    "Beauty": ["Hydrating", "Vitamin C", "Hyaluronic", "Natural", "Sensitive", "Matte",
               "Long Lasting", "Rose", "Argan", "Fragrance Free", "Vegan", "Anti Ageing"],
    "Electronics": ["Wireless", "Noise Cancelling", "USB-C", "Portable", "Ergonomic", "4K",
                    "Fast Charging", "Smart", "Compact", "Bluetooth", "Magnetic", "Pro"],
    "Sports & Outdoors": ["Lightweight", "Breathable", "Waterproof", "Non Slip", "Insulated",
                          "Ultralight", "Reflective", "Adjustable", "Trail", "Compression",
                          "Thermal", "Foldable"],
    "Toys & Games": ["Wooden", "Educational", "Classic", "Deluxe", "Magnetic",
                     "Glow in the Dark", "Junior", "Family", "Mini", "Giant", "Rainbow",
                     "Adventure"],
    "Garden": ["Heirloom", "Organic", "Heavy Duty", "Solar", "Weatherproof", "Cedar",
               "Perennial", "Galvanised", "Telescopic", "Expandable", "Terracotta", "Peat Free"],
    "Pets": ["Grain Free", "Chicken", "Salmon", "Orthopaedic", "Reflective", "Interactive",
             "Natural", "Senior", "Puppy", "Kitten", "Dental", "Durable"],
    "Books & Stationery": ["Hardcover", "Paperback", "Illustrated", "Dotted", "Lined",
                           "Refillable", "Recycled", "Leather Bound", "Pocket", "Bestselling",
                           "Limited Edition", "Classic"],
    "Baby": ["Organic Cotton", "Anti Colic", "Newborn", "Soft", "Convertible", "Foldable",
             "BPA Free", "Hypoallergenic", "Lightweight", "Ergonomic", "Musical", "Washable"],
    "DIY": ["Cordless", "Brushless", "Heavy Duty", "Stainless Steel", "Magnetic", "Matt",
            "Dimmable", "Quick Dry", "Precision", "Professional", "Compact", "Warm White"],
}  # fmt: skip

#: Variant suffixes (size, pack, colour, model) per top category.
VARIANTS: dict[str, list[str]] = {
    "Home": ["Set of 2", "Set of 4", "Large", "Small", "Grey", "White", "Blue", "Natural"],
    "Food & Drink": ["250g", "500g", "1kg", "100g", "750ml", "1L", "Pack of 6", "Pack of 12"],
    "Fashion": ["Black", "Navy", "White", "Olive", "Beige", "Red", "Grey", "Blue"],
    "Beauty": ["30ml", "50ml", "100ml", "200ml", "Travel Size", "Duo Pack"],
    "Electronics": ["Mini", "Gen 2", "Pro 3", "S2", "X100", "2024 Edition", "Black", "White"],
    "Sports & Outdoors": ["S", "M", "L", "XL", "1L", "Blue", "Black", "Orange"],
    "Toys & Games": ["Age 3+", "Age 6+", "Age 8+", "500 Pieces", "1000 Pieces", "Travel Edition"],
    "Garden": ["5L", "10m", "25m", "Pack of 10", "Large", "Green", "Set of 3"],
    "Pets": ["2kg", "400g", "12 x 85g", "Large", "Medium", "Small", "10kg"],
    "Books & Stationery": ["A5", "A4", "Vol. 1", "2nd Edition", "Pack of 3", "Pack of 10"],
    "Baby": ["0-3 Months", "3-6 Months", "6-12 Months", "Grey", "Pack of 3", "Pink", "Blue"],
    "DIY": ["18V", "20V", "Set of 6", "100 Pack", "2.5L", "5m", "E27", "GU10"],
}

#: Brand names are ``prefix + suffix`` ("Nordvik") or two words ("Oak Works").
BRAND_PREFIXES = [
    "Nord", "Alba", "Verd", "Lumi", "Casa", "Sol", "Terra", "Blue", "Oak", "Kiro", "Vela",
    "Mira", "Zen", "Pura", "Bright", "Silver", "Nova", "Aero", "Fjord", "Bella", "Urban",
    "Wild", "Stone", "Coral", "Maple", "Iron", "Swift", "Happy", "Little", "Golden", "Rivo",
    "Hexa", "Polar", "Sunny", "Kind",
]  # fmt: skip
BRAND_SUFFIXES = [
    "vik", "ra", "mo", "line", "co", "ware", "haus", "ly", "ora", "ton", "berg", "lux",
    "ette", "ia", "max", "io", "sen", "ando",
]  # fmt: skip
BRAND_WORDS = ["Field", "Works", "Craft", "Nest", "Wood", "Goods", "Home", "Lab", "Studio", "& Co"]


def leaf_paths() -> list[tuple[str, str]]:
    """Every leaf as ``(top category, "Top > Sub > Leaf")``, in a fixed order."""
    return [
        (top, f"{top} > {sub} > {leaf}")
        for top, subs in TAXONOMY.items()
        for sub, leaves in subs.items()
        for leaf in leaves
    ]


def brand_name_pool() -> list[str]:
    """All brand names the catalogue can use, in a fixed order (no duplicates)."""
    names = [p + s for p in BRAND_PREFIXES for s in BRAND_SUFFIXES]
    names += [f"{p} {w}" for p in BRAND_PREFIXES for w in BRAND_WORDS]
    return list(dict.fromkeys(names))
