"""The engine's decisions, sans-I/O: which blocks to ask of whom (the picker), who may download
from us (the choker), which connections matter most (BEP 40), why a download stalls, which
addresses are blocked."""
