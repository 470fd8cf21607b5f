"""What every command shares: loading the config once and turning known errors into clean exits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from watchtower.config import ConfigError
from watchtower.logging import setup_logging
from watchtower.settings import WatchtowerConfig, load_config

console = Console(stderr=True)


@dataclass
class Context:
    config_path: Path | None
    _config: WatchtowerConfig | None = None

    @property
    def config(self) -> WatchtowerConfig:
        if self._config is None:
            try:
                self._config = load_config(self.config_path)
            except ConfigError as exc:
                console.print("[bold red]Invalid configuration[/]")
                for problem in exc.problems:
                    console.print(f"  {problem}", markup=False, highlight=False)
                raise typer.Exit(2) from None
            setup_logging(self._config.log_level, self._config.log_format)
        return self._config


def ctx_of(ctx: typer.Context) -> Context:
    return ctx.ensure_object(Context) if ctx.obj is None else ctx.obj


def fail(message: str, code: int = 1) -> NoReturn:
    """Stop a command with a one-line explanation, never a traceback."""
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)  # [spark] is not markup
    raise typer.Exit(code)
