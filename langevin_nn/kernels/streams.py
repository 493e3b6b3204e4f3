"""Random stream ids of the randomness contract (docs/architecture.md).

Per-replica streams are keyed by the global replica index and the step; shared streams use
replica 0 and step 0 so that every shard and thread count sees the same teacher and data.
"""
INIT = 1          # initial parameters: Gaussian i -> parameter i (step 0)
BATCH = 2         # minibatch indices of a step
NOISE = 3         # thermal noise of a step: Gaussian i -> parameter i
ONLINE_X = 4      # fresh inputs of an online step: Gaussian b * N_0 + j -> X[b, j]
ONLINE_LABEL = 5  # label noise of an online step: Gaussian b * N_M + i
TEACHER = 16      # teacher parameters
TRAIN_X = 17      # training inputs
TRAIN_LABEL = 18  # training label noise
PROBE_X = 19      # probe inputs
PROBE_LABEL = 20  # probe label noise
