"""The boundary sector of the bulk-boundary decomposition: where the data enter (inputs, the
stochastic minibatch) and leave (the loss against the targets)."""
