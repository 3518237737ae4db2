"""The engines that build the offline feature tables; light, so a command's --help can list them."""

from __future__ import annotations

from typing import Literal

Engine = Literal["pandas", "spark"]
ENGINES: tuple[Engine, ...] = ("pandas", "spark")
