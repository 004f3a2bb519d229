"""Optional run features: training hooks that any strategy's run can enable ([features.NAME] enabled = true).

A feature module registers a factory `make(options: dict, ctx: StrategyContext, *, ground_truth: GroundTruth,
eval_config: EvalConfig) -> hook`; the hook follows harness.training.engine.TrainHook and may add `finish(run_dir)`
to write its results.
"""
