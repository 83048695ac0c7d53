"""Training: device-resident batches, triplet sampling, the ignite engine, and one run (`run`)."""
