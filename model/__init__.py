"""dmalint's reference model: what a trace's events are, and what they do to a machine.

A pure library: no file or terminal I/O, no YAML, no Lark. It replays events and answers
questions about the simulated machine; it never decides what is a violation (rules do).
"""

__all__: list[str] = []
