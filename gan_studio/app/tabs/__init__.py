"""One module per tab; each exposes ``build(studio, picker)`` and wires its own events."""
