"""Training-step machinery every architecture builds its steps on (see base.TrainingSteps)."""
