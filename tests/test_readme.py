"""The README's Python snippets run as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)  # the snippets save models under ./runs
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["Z"].shape == (1797, 2)
    assert namespace["sevens"].shape == (16, 64)
    assert namespace["metrics"]["log_likelihood"]["unit"].startswith("nats")
    assert (tmp_path / "runs" / "vae" / "weights.safetensors").is_file()


def test_readme_commands_parse_as_written():
    """Every `vaelab ...` line of README's shell blocks names a command and flags that exist."""
    import shlex

    from vaelab.cli import build_parser

    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    commands = [line for line in lines if line.startswith("vaelab ") and "..." not in line]
    assert len(commands) >= 10
    parser = build_parser()
    for line in commands:
        words = shlex.split(line)[1:]
        if "--help" in words:
            continue
        parser.parse_args(words)  # an unknown command or flag exits here, naming the line's error
