"""Names, e-mail domains, phone and postcode formats of the synthetic customers' countries."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

#: Country code -> share of customers, language.
COUNTRIES: dict[str, tuple[float, str]] = {
    "DE": (0.30, "de"),
    "FR": (0.20, "fr"),
    "GB": (0.20, "en"),
    "IT": (0.12, "it"),
    "ES": (0.10, "es"),
    "NL": (0.08, "nl"),
}

FIRST_NAMES: dict[str, list[str]] = {
    "DE": ["Anna", "Lena", "Julia", "Sophie", "Laura", "Katharina", "Sabine", "Petra", "Jana",
           "Miriam", "Lea", "Hannah", "Jürgen", "Thomas", "Michael", "Andreas", "Stefan", "Lukas",
           "Jonas", "Felix", "Maximilian", "Tobias", "Sebastian", "Uwe", "Matthias", "Jörg"],
    "FR": ["Marie", "Camille", "Léa", "Chloé", "Manon", "Inès", "Julie", "Céline", "Nathalie",
           "Sophie", "Élodie", "Claire", "Jean", "Pierre", "Nicolas", "Julien", "Thomas",
           "François", "Antoine", "Hugo", "Louis", "Mathieu", "Sébastien", "Olivier", "Rémi"],
    "GB": ["Olivia", "Emily", "Amelia", "Jessica", "Charlotte", "Sophie", "Chloe", "Emma",
           "Hannah", "Lucy", "Grace", "Sarah", "Oliver", "Harry", "George", "Jack", "James",
           "William", "Thomas", "Daniel", "Samuel", "Joseph", "David", "Matthew", "Ben"],
    "IT": ["Giulia", "Francesca", "Chiara", "Sara", "Martina", "Alessia", "Valentina", "Elena",
           "Federica", "Silvia", "Marco", "Alessandro", "Luca", "Giuseppe", "Matteo", "Andrea",
           "Francesco", "Lorenzo", "Davide", "Simone", "Niccolò", "Giovanni", "Paolo"],
    "ES": ["María", "Lucía", "Carmen", "Laura", "Paula", "Marta", "Sofía", "Elena", "Ana",
           "Cristina", "Alejandro", "Javier", "Daniel", "Pablo", "David", "Sergio", "Carlos",
           "Jorge", "José", "Álvaro", "Manuel", "Adrián", "Iván", "Raúl"],
    "NL": ["Emma", "Sanne", "Lotte", "Fleur", "Anouk", "Eva", "Lisa", "Femke", "Iris", "Noor",
           "Daan", "Sem", "Lucas", "Bram", "Thijs", "Jeroen", "Ruben", "Tim", "Niels", "Koen",
           "Sander", "Wouter", "Joris"],
}  # fmt: skip

LAST_NAMES: dict[str, list[str]] = {
    "DE": ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
           "Schulz", "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf",
           "Schröder", "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann",
           "Hartmann", "Lange", "Werner", "Krause", "Lehmann"],
    "FR": ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
           "Leroy", "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David",
           "Bertrand", "Roux", "Vincent", "Fournier", "Morel", "Girard", "André", "Mercier",
           "Dupont", "Lambert"],
    "GB": ["Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson",
           "Thomas", "Johnson", "Roberts", "Robinson", "Thompson", "Wright", "Walker", "White",
           "Edwards", "Hughes", "Green", "Hall", "Lewis", "Harris", "Clarke", "Patel", "Jackson",
           "Wood", "Turner", "O'Brien"],
    "IT": ["Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
           "Marino", "Greco", "Bruno", "Gallo", "Conti", "De Luca", "Mancini", "Costa",
           "Giordano", "Rizzo", "Lombardi", "Moretti", "Barbieri", "Fontana", "Santoro"],
    "ES": ["García", "Rodríguez", "González", "Fernández", "López", "Martínez", "Sánchez",
           "Pérez", "Gómez", "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno",
           "Muñoz", "Álvarez", "Romero", "Alonso", "Gutiérrez", "Navarro", "Torres"],
    "NL": ["de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen",
           "Visser", "Smit", "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters",
           "Hendriks", "van Leeuwen", "Dekker", "Brouwer", "de Wit", "Dijkstra", "Smits"],
}  # fmt: skip

EMAIL_DOMAINS: dict[str, list[str]] = {
    "DE": ["gmail.com", "web.de", "gmx.de", "t-online.de", "outlook.de", "yahoo.de"],
    "FR": ["gmail.com", "orange.fr", "free.fr", "laposte.net", "hotmail.fr", "sfr.fr"],
    "GB": ["gmail.com", "hotmail.co.uk", "outlook.com", "yahoo.co.uk", "btinternet.com"],
    "IT": ["gmail.com", "libero.it", "hotmail.it", "virgilio.it", "alice.it"],
    "ES": ["gmail.com", "hotmail.es", "yahoo.es", "outlook.es", "telefonica.net"],
    "NL": ["gmail.com", "ziggo.nl", "hotmail.nl", "kpnmail.nl", "outlook.com"],
}

#: Country -> (E.164 prefix of a mobile number, digits after it, local trunk prefix).
PHONES: dict[str, tuple[str, int, str]] = {
    "DE": ("+4915", 9, "015"),
    "FR": ("+336", 8, "06"),
    "GB": ("+447", 9, "07"),
    "IT": ("+393", 9, "3"),
    "ES": ("+346", 8, "6"),
    "NL": ("+316", 8, "06"),
}

#: Outward-code areas of UK postcodes.
UK_AREAS = ["SW", "SE", "N", "E", "W", "NW", "EC", "B", "M", "L", "LS", "G", "EH", "CF", "BS",
            "NE", "OX", "CB", "BN", "S"]  # fmt: skip
LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


@lru_cache(maxsize=4096)
def ascii_fold(text: str) -> str:
    """Text for an e-mail address: accents stripped, lower case, spaces and quotes removed."""
    folded = unicodedata.normalize("NFKD", text.replace("ß", "ss"))
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return plain.lower().replace(" ", "").replace("'", "")


def local_phone(country: str, digits: str) -> str:
    """A mobile number written the way people of ``country`` write it at home."""
    trunk = PHONES[country][2]
    if country == "DE":
        return f"{trunk}{digits[0]} {digits[1:]}"
    if country == "FR":
        d = trunk + digits
        return " ".join(d[i : i + 2] for i in range(0, 10, 2))
    if country == "GB":
        d = trunk + digits
        return f"{d[:5]} {d[5:]}"
    if country == "IT":
        d = trunk + digits
        return f"{d[:3]} {d[3:6]} {d[6:]}"
    if country == "ES":
        d = trunk + digits
        return f"{d[:3]} {d[3:5]} {d[5:7]} {d[7:]}"
    return f"{trunk}-{digits}"


def postcode(country: str, n: int, letters: tuple[int, int], area: int) -> str:
    """A postcode of ``country`` from a number and letter/area picks."""
    if country == "NL":
        return f"{1000 + n % 9000} {LETTERS[letters[0]]}{LETTERS[letters[1]]}"
    if country == "GB":
        return f"{UK_AREAS[area]}{1 + n % 19} {n % 10}{LETTERS[letters[0]]}{LETTERS[letters[1]]}"
    if country == "ES":
        return f"{1000 + n % 51000:05d}"
    return f"{1000 + n % 98000:05d}"
