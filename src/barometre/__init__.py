"""barometre: the reproducible pipeline of the « Baromètre de la démocratie locale numérique».

Phases, one module each: ``ingest`` → ``clean`` → ``tabulate`` → ``figures`` → ``render``.
"""
__version__ = "0.1.0"
