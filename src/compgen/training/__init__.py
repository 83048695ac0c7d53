"""Training one run (`run`): the ignite engine, checkpoints, the device, and the per-epoch probes;
its batches come from compgen.batches."""
