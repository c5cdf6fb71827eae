"""Routing evaluation: replay a labeled set through the real routing decision, log it to MLflow.

``data`` reads the labeled JSONL; ``replay`` turns predictions into per-prompt routing outcomes
and costs (pure); ``summary`` aggregates them and compares argmax with regret routing (pure);
``pipeline`` runs the classifier over a file; ``report`` and ``plots`` log one MLflow run;
``model_threshold`` writes a recommended threshold back to models/intent.json.
``python -m intent_router.evaluation`` is the CLI; ``python -m intent_router.evaluation.conversation``
measures conversation-aware classification on the real test rows that carry context.
"""
