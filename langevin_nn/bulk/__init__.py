"""The bulk sector of the bulk-boundary decomposition: what the architecture alone fixes
(links, the flat parameter layout, activations), independent of the data."""
