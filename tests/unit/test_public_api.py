import intent_router


def test_public_names_are_pinned() -> None:
    assert intent_router.__all__ == ["INTENTS"]
    assert intent_router.INTENTS == (
        "code_generation",
        "architecture_review",
        "refactoring",
        "debugging",
        "documentation",
        "security_audit",
        "general",
    )


def test_the_runtime_package_never_imports_training() -> None:
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for path in (root / "src" / "intent_router").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                assert not any(n.startswith("training") for n in names), path


def test_the_feedback_schema_names_exactly_the_seven_intents() -> None:
    import typing

    from intent_router.labels import INTENTS
    from intent_router.service.schemas import IntentName

    assert set(typing.get_args(IntentName)) == set(INTENTS)
